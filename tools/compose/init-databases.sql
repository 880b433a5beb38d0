-- One database per bounded context; the postgres image runs this once, on an empty data directory.
-- No service reads another's database, so each gets its own rather than a schema in a shared one.
CREATE DATABASE trading;
CREATE DATABASE settlement;
CREATE DATABASE risk;
CREATE DATABASE compliance;
