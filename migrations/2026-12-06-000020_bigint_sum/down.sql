DROP AGGREGATE netmonitor_sum(bigint);
