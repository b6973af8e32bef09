DROP TABLE IF EXISTS soar_actions;
