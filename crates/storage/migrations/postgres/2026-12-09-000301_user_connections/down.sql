DROP TABLE user_connections;
