DROP TABLE IF EXISTS service_providers;
DELETE FROM whitelist WHERE ip_cidr IS NULL;
ALTER TABLE whitelist
    DROP CONSTRAINT IF EXISTS whitelist_matches_something,
    DROP COLUMN IF EXISTS domain,
    DROP COLUMN IF EXISTS port,
    DROP COLUMN IF EXISTS direction,
    DROP COLUMN IF EXISTS sensor,
    ALTER COLUMN ip_cidr SET NOT NULL;
