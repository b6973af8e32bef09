DROP TABLE sensor_commands;
