DROP TABLE asn_ranges;
DROP TABLE indicators;
DROP TABLE threat_feeds;
