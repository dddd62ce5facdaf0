-- Runs once, on the first start of an empty postgres volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER, who then owns both databases.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
