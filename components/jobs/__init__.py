"""What runs around a migration: the one locked-down pod every Job runs (`pod`), Flyway's plan
computed once (`flyway`) and handed to the backup before it (`backup`) and to the migration
Job (`migration`)."""
