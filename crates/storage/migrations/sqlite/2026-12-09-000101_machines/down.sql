DROP TABLE personal_tokens;
DROP TABLE service_clients;
