DROP TABLE time_entries;
DROP TABLE timesheets;
