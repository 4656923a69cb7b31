DROP TABLE leave_requests;
DROP TABLE holidays;
DROP TABLE leave_types;
