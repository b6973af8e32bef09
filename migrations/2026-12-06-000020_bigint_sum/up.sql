-- A sum of bigints that adds in bigint. PostgreSQL's sum(bigint) accumulates in numeric: over
-- the 50,000 addresses of a week's top talkers it took 145 ms where adding in bigint takes 65.
-- The summaries sum with this one; it raises an error on overflow (past 9.2 × 10^18) instead
-- of widening, far beyond any count or byte total they add.
CREATE AGGREGATE netmonitor_sum(bigint) (
    SFUNC = int8pl,
    STYPE = bigint,
    COMBINEFUNC = int8pl,
    PARALLEL = SAFE
);
