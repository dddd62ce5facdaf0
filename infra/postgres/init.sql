-- Runs once, on the first start of an empty postgres volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER, who then owns both databases.
CREATE DATABASE mlflow;
-- users and permissions of MLflow's basic-auth app
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
-- the analyst review queue (cases; migrated by the service and the console at start)
CREATE DATABASE cases;
