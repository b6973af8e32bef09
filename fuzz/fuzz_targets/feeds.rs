//! Threat-feed content as downloaded (hostile: anyone serving a feed, or a proxy in between):
//! every format's parser, STIX patterns, and a matcher built from what parsed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_intel::formats::parse_pattern;
use netmonitor_intel::matcher::{Entry, MatcherBuilder};
use netmonitor_intel::{parse, FeedFormat};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut b = MatcherBuilder::new();
    for f in FeedFormat::ALL {
        let r = parse(f, &text);
        for i in &r.indicators {
            b.add(
                f.name(),
                &Entry {
                    kind: i.kind,
                    value: &i.value,
                    confidence: i.confidence.unwrap_or(50),
                    valid_until: i.valid_until,
                    description: i.description.as_deref(),
                },
            );
        }
    }
    let m = b.build();
    let mut out = Vec::new();
    m.ip("10.0.0.1".parse().unwrap(), 0, &mut out);
    let _ = parse_pattern(&text);
});
