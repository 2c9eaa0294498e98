-- Run once by the postgres image, as POSTGRES_USER (sweep), when its data volume is empty
-- (mounted into /docker-entrypoint-initdb.d/ by compose.yaml). Later changes to this file do
-- nothing to an existing volume.
--
-- One database per tool: MLflow's tracking store, MLflow's basic-auth user store and Optuna's
-- studies each keep their own alembic_version table, so no two of them can share a database.
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
CREATE DATABASE optuna;
