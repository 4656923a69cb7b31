DROP TABLE project_members;
DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE clients;
