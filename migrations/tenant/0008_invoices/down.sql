DROP TABLE payments;
DROP TABLE invoice_entries;
DROP TABLE invoice_lines;
DROP TABLE invoice_counters;
DROP TABLE invoices;
