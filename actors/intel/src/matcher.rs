//! The indicator matcher: immutable once built, shared as an `Arc`, rebuilt off the hot path
//! and swapped whole after every feed refresh.
//!
//! Exact values (addresses, domains, URLs, fingerprints, hashes) sit in hash maps. Address
//! blocks become disjoint ranges, each pointing at its most specific block, so a longest-prefix
//! lookup is one binary search whatever the mix of prefix lengths. A domain indicator covers its
//! names below: a lookup tries the name and each parent at label boundaries, so `evil.example`
//! matches `a.b.evil.example` and never `notevil.example`. Several feeds may list one value:
//! its hits are chained.

use crate::indicator::{parse_cidr, IndicatorKind};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// "No next hit" in a chain.
const END: u32 = u32::MAX;

/// What one feed says of one value (the matcher's compact copy of an indicator).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index into [`Matcher::feeds`].
    pub feed: u16,
    /// 0–100.
    pub confidence: u8,
    /// Kind of the indicator.
    pub kind: IndicatorKind,
    /// Expiry (µs since the epoch), `i64::MAX` for none.
    pub valid_until: i64,
    /// Index into the description table, `u32::MAX` for none.
    description: u32,
    next: u32,
}

/// One indicator handed to [`MatcherBuilder::add`].
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// Kind.
    pub kind: IndicatorKind,
    /// Normalised value.
    pub value: &'a str,
    /// 0–100.
    pub confidence: u8,
    /// Expiry (µs), if any.
    pub valid_until: Option<i64>,
    /// Description, if any.
    pub description: Option<&'a str>,
}

/// The listed value a match came from, rendered only when someone needs the text (a lookup
/// that hits allocates nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listed<'m> {
    /// An address listed by itself.
    Addr(IpAddr),
    /// A block, a domain, a URL or a digest as stored.
    Text(&'m str),
}

impl std::fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listed::Addr(a) => a.fmt(f),
            Listed::Text(t) => f.write_str(t),
        }
    }
}

/// A match: the hit and the indicator value it matched (the block for an address, the listed
/// parent for a domain).
#[derive(Clone, Debug, PartialEq)]
pub struct Match<'m> {
    /// The hit.
    pub hit: &'m Hit,
    /// The listed value.
    pub indicator: Listed<'m>,
    /// Name of the feed.
    pub feed: &'m str,
    /// Description from the feed.
    pub description: Option<&'m str>,
}

/// Disjoint, sorted address ranges, each mapped to the head of a hit chain and the block it
/// came from. With many ranges, a table by the address's top 16 bits narrows the binary search
/// to the few ranges starting in that /16 (a handful of comparisons instead of seventeen).
#[derive(Debug, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    heads: Vec<u32>,
    blocks: Vec<u32>,
    /// `top16[b]`: index of the first range starting at or after bucket `b` (65,537 entries).
    top16: Vec<u32>,
}

/// Ranges below which a plain binary search is as fast as the bucket table.
const BUCKET_MIN_RANGES: usize = 256;

impl<T: Addr> Ranges<T> {
    fn index(&mut self) {
        if self.starts.len() < BUCKET_MIN_RANGES {
            return;
        }
        let mut top16 = Vec::with_capacity(65_537);
        let mut i = 0usize;
        for b in 0..=65_536usize {
            while i < self.starts.len() && self.starts[i].top16() < b {
                i += 1;
            }
            top16.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        self.top16 = top16;
    }

    fn find(&self, a: T) -> Option<(u32, u32)> {
        let i = if self.top16.is_empty() {
            self.starts.partition_point(|s| *s <= a).checked_sub(1)?
        } else {
            let b = a.top16();
            let (lo, hi) = (self.top16[b] as usize, self.top16[b + 1] as usize);
            let k = self.starts[lo..hi].partition_point(|s| *s <= a);
            (lo + k).checked_sub(1)?
        };
        (a <= self.ends[i]).then(|| (self.heads[i], self.blocks[i]))
    }
}

/// Address arithmetic the range builder needs, for u32 (IPv4) and u128 (IPv6).
trait Addr: Copy + Ord + std::fmt::Debug {
    const BITS: u8;
    /// The top 16 bits, as a bucket number.
    fn top16(self) -> usize;
    fn block_end(start: Self, len: u8) -> Self;
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Option<Self>;
}

impl Addr for u32 {
    const BITS: u8 = 32;
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
    fn block_end(start: u32, len: u8) -> u32 {
        u32::MAX
            .checked_shr(u32::from(len))
            .map_or(start, |host| start | host)
    }
    fn succ(self) -> Option<u32> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<u32> {
        self.checked_sub(1)
    }
}

impl Addr for u128 {
    const BITS: u8 = 128;
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
    fn block_end(start: u128, len: u8) -> u128 {
        u128::MAX
            .checked_shr(u32::from(len))
            .map_or(start, |host| start | host)
    }
    fn succ(self) -> Option<u128> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<u128> {
        self.checked_sub(1)
    }
}

/// Blocks (start, prefix length, chain head, block id) → disjoint ranges where the innermost
/// block wins. Prefix blocks nest or are disjoint, so one sweep with a stack does it.
fn flatten<T: Addr>(mut blocks: Vec<(T, u8, u32, u32)>) -> Ranges<T> {
    blocks.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut r = Ranges {
        starts: Vec::new(),
        ends: Vec::new(),
        heads: Vec::new(),
        blocks: Vec::new(),
        top16: Vec::new(),
    };
    let mut emit = |s: T, e: T, head: u32, block: u32| {
        if s <= e {
            r.starts.push(s);
            r.ends.push(e);
            r.heads.push(head);
            r.blocks.push(block);
        }
    };
    // (end, head, block) of enclosing blocks; `pos` is the first address not yet emitted.
    let mut stack: Vec<(T, u32, u32)> = Vec::new();
    let mut pos: Option<T> = None;
    for (start, len, head, block) in blocks {
        let end = T::block_end(start, len.min(T::BITS));
        while let Some(&(top_end, top_head, top_block)) = stack.last() {
            if top_end >= start {
                break;
            }
            if let Some(p) = pos {
                emit(p, top_end, top_head, top_block);
            }
            pos = top_end.succ();
            stack.pop();
        }
        if let (Some(&(_, top_head, top_block)), Some(p), Some(before)) =
            (stack.last(), pos, start.pred())
        {
            emit(p, before, top_head, top_block);
        }
        pos = Some(start);
        stack.push((end, head, block));
    }
    while let Some((top_end, top_head, top_block)) = stack.pop() {
        if let Some(p) = pos {
            emit(p, top_end, top_head, top_block);
        }
        pos = top_end.succ();
        if pos.is_none() {
            break;
        }
    }
    r.index();
    r
}

/// The built matcher.
#[derive(Debug, Default)]
pub struct Matcher {
    feeds: Vec<Arc<str>>,
    hits: Vec<Hit>,
    descriptions: Vec<Box<str>>,
    ip4: FxHashMap<u32, u32>,
    ip6: FxHashMap<u128, u32>,
    cidr4: Ranges<u32>,
    cidr6: Ranges<u128>,
    /// Block texts (`10.0.0.0/8`) by block id, for evidence.
    block_names: Vec<Box<str>>,
    domains: FxHashMap<Box<str>, u32>,
    /// One bit per domain's hash: a name whose bit is clear is not listed, found without
    /// touching the (much larger) map. Most names looked up are not listed.
    domain_bits: Vec<u64>,
    urls: FxHashMap<Box<str>, u32>,
    /// Fingerprints and hashes, one map per kind (indexed by [`IndicatorKind::index`]).
    digests: Vec<FxHashMap<Box<str>, u32>>,
    counts: Vec<(IndicatorKind, usize)>,
}

/// Collects indicators, then builds a [`Matcher`].
#[derive(Default)]
pub struct MatcherBuilder {
    m: Matcher,
    feed_ids: FxHashMap<Arc<str>, u16>,
    description_ids: FxHashMap<Box<str>, u32>,
    blocks4: FxHashMap<(u32, u8), u32>,
    blocks6: FxHashMap<(u128, u8), u32>,
    rejected: usize,
}

impl MatcherBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn feed_id(&mut self, feed: &str) -> u16 {
        if let Some(id) = self.feed_ids.get(feed) {
            return *id;
        }
        let id = u16::try_from(self.m.feeds.len()).unwrap_or(u16::MAX);
        let name: Arc<str> = Arc::from(feed);
        self.m.feeds.push(name.clone());
        self.feed_ids.insert(name, id);
        id
    }

    fn description_id(&mut self, d: Option<&str>) -> u32 {
        let Some(d) = d.filter(|d| !d.is_empty()) else {
            return END;
        };
        if let Some(id) = self.description_ids.get(d) {
            return *id;
        }
        let id = u32::try_from(self.m.descriptions.len()).unwrap_or(END);
        self.m.descriptions.push(d.into());
        self.description_ids.insert(d.into(), id);
        id
    }

    /// Adds one indicator of `feed`; a value that does not parse as its kind (a damaged row:
    /// values are normalised before they are stored) is counted and skipped.
    pub fn add(&mut self, feed: &str, e: &Entry<'_>) {
        let feed = self.feed_id(feed);
        let description = self.description_id(e.description);
        let idx = u32::try_from(self.m.hits.len()).unwrap_or(END);
        let m = &mut self.m;
        let slot = match e.kind {
            IndicatorKind::Ip => match e.value.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Some(m.ip4.entry(u32::from(a)).or_insert(END)),
                Ok(IpAddr::V6(a)) => Some(m.ip6.entry(u128::from(a)).or_insert(END)),
                Err(_) => None,
            },
            IndicatorKind::Cidr => match parse_cidr(e.value) {
                Some((IpAddr::V4(a), len)) => {
                    Some(self.blocks4.entry((u32::from(a), len)).or_insert(END))
                }
                Some((IpAddr::V6(a), len)) => {
                    Some(self.blocks6.entry((u128::from(a), len)).or_insert(END))
                }
                None => None,
            },
            IndicatorKind::Domain => Some(m.domains.entry(e.value.into()).or_insert(END)),
            IndicatorKind::Url => Some(m.urls.entry(e.value.into()).or_insert(END)),
            k => {
                if m.digests.is_empty() {
                    m.digests = vec![FxHashMap::default(); IndicatorKind::ALL.len()];
                }
                m.digests
                    .get_mut(k.index())
                    .map(|d| d.entry(e.value.into()).or_insert(END))
            }
        };
        let Some(slot) = slot else {
            self.rejected += 1;
            return;
        };
        m.hits.push(Hit {
            feed,
            confidence: e.confidence.min(100),
            kind: e.kind,
            valid_until: e.valid_until.unwrap_or(i64::MAX),
            description,
            next: *slot,
        });
        *slot = idx;
        match m.counts.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, n)) => *n += 1,
            None => m.counts.push((e.kind, 1)),
        }
    }

    /// Indicators added so far.
    pub fn len(&self) -> usize {
        self.m.hits.len()
    }

    /// Nothing added yet.
    pub fn is_empty(&self) -> bool {
        self.m.hits.is_empty()
    }

    /// Rows skipped as unreadable.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// The matcher.
    pub fn build(mut self) -> Matcher {
        let m = &mut self.m;
        if !m.domains.is_empty() {
            m.domain_bits = vec![0; DOMAIN_BITS / 64];
            for k in m.domains.keys() {
                let b = domain_bit(k);
                m.domain_bits[b / 64] |= 1 << (b % 64);
            }
        }
        let mut name = |text: String| {
            m.block_names.push(text.into());
            u32::try_from(m.block_names.len() - 1).unwrap_or(END)
        };
        let blocks4: Vec<_> = self
            .blocks4
            .iter()
            .map(|(&(a, len), &head)| {
                let id = name(format!("{}/{len}", std::net::Ipv4Addr::from(a)));
                (a, len, head, id)
            })
            .collect();
        let blocks6: Vec<_> = self
            .blocks6
            .iter()
            .map(|(&(a, len), &head)| {
                let id = name(format!("{}/{len}", std::net::Ipv6Addr::from(a)));
                (a, len, head, id)
            })
            .collect();
        m.cidr4 = flatten(blocks4);
        m.cidr6 = flatten(blocks6);
        m.counts.sort();
        m.hits.shrink_to_fit();
        self.m
    }
}

impl Matcher {
    /// Indicators held, by kind.
    pub fn counts(&self) -> &[(IndicatorKind, usize)] {
        &self.counts
    }

    /// Indicators held.
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Feed names, by id.
    pub fn feeds(&self) -> &[Arc<str>] {
        &self.feeds
    }

    /// The hits of the chain starting at `head` still valid at `now` (µs), pushed to `out`.
    fn chain<'m>(&'m self, head: u32, now: i64, indicator: Listed<'m>, out: &mut Vec<Match<'m>>) {
        let mut i = head;
        while let Some(h) = self.hits.get(i as usize) {
            if h.valid_until > now {
                out.push(Match {
                    hit: h,
                    indicator,
                    feed: self.feeds.get(h.feed as usize).map_or("", |f| f),
                    description: self.descriptions.get(h.description as usize).map(|d| &**d),
                });
            }
            i = h.next;
        }
    }

    /// Hits for an address: the address itself, then its most specific listed block.
    pub fn ip<'m>(&'m self, a: IpAddr, now: i64, out: &mut Vec<Match<'m>>) {
        match a {
            IpAddr::V4(v4) => {
                let k = u32::from(v4);
                if let Some(&h) = self.ip4.get(&k) {
                    self.chain(h, now, Listed::Addr(a), out);
                }
                if let Some((h, block)) = self.cidr4.find(k) {
                    self.chain(h, now, Listed::Text(self.block_name(block)), out);
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return self.ip(IpAddr::V4(v4), now, out);
                }
                let k = u128::from(v6);
                if let Some(&h) = self.ip6.get(&k) {
                    self.chain(h, now, Listed::Addr(a), out);
                }
                if let Some((h, block)) = self.cidr6.find(k) {
                    self.chain(h, now, Listed::Text(self.block_name(block)), out);
                }
            }
        }
    }

    fn block_name(&self, id: u32) -> &str {
        self.block_names.get(id as usize).map_or("", |b| b)
    }

    /// Hits for a name: listed as is, or a listed parent domain. `name` must be lower case
    /// without a trailing dot ([`lower_name`]).
    pub fn domain<'m>(&'m self, name: &str, now: i64, out: &mut Vec<Match<'m>>) {
        if self.domains.is_empty() {
            return;
        }
        let mut rest = name;
        // Listed domains have two labels at least: a bare top-level label is never looked up.
        while let Some(dot) = rest.find('.') {
            let b = domain_bit(rest);
            if self.domain_bits[b / 64] & (1 << (b % 64)) != 0 {
                if let Some((k, &h)) = self.domains.get_key_value(rest) {
                    self.chain(h, now, Listed::Text(k), out);
                }
            }
            rest = &rest[dot + 1..];
        }
    }

    /// Hits for a normalised URL.
    pub fn url<'m>(&'m self, url: &str, now: i64, out: &mut Vec<Match<'m>>) {
        if let Some((k, &h)) = self.urls.get_key_value(url) {
            self.chain(h, now, Listed::Text(k), out);
        }
    }

    /// Hits for a fingerprint or hash of `kind` (lower-case hex, or JA4 text).
    pub fn digest<'m>(
        &'m self,
        kind: IndicatorKind,
        value: &str,
        now: i64,
        out: &mut Vec<Match<'m>>,
    ) {
        if let Some((k, &h)) = self
            .digests
            .get(kind.index())
            .and_then(|d| d.get_key_value(value))
        {
            self.chain(h, now, Listed::Text(k), out);
        }
    }
}

/// Bits of the domain filter (256 KiB: it stays in cache).
const DOMAIN_BITS: usize = 1 << 21;

fn domain_bit(name: &str) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(name.as_bytes());
    (h.finish() as usize) % DOMAIN_BITS
}

/// One matcher per feed: a refresh rebuilds only its feed's matcher and swaps the set.
#[derive(Debug, Default, Clone)]
pub struct FeedMatchers {
    feeds: Vec<(Arc<str>, Arc<Matcher>)>,
}

impl FeedMatchers {
    /// The set with `feed`'s matcher replaced (or added).
    pub fn with(&self, feed: &str, m: Arc<Matcher>) -> Self {
        let mut feeds: Vec<_> = self
            .feeds
            .iter()
            .filter(|(n, _)| &**n != feed)
            .cloned()
            .collect();
        feeds.push((Arc::from(feed), m));
        feeds.sort_by(|a, b| a.0.cmp(&b.0));
        FeedMatchers { feeds }
    }

    /// The set without `feed`.
    pub fn without(&self, feed: &str) -> Self {
        FeedMatchers {
            feeds: self
                .feeds
                .iter()
                .filter(|(n, _)| &**n != feed)
                .cloned()
                .collect(),
        }
    }

    /// Indicators held, over all feeds.
    pub fn len(&self) -> usize {
        self.feeds.iter().map(|(_, m)| m.len()).sum()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (feed, matcher) pairs.
    pub fn feeds(&self) -> impl Iterator<Item = (&str, &Matcher)> {
        self.feeds.iter().map(|(n, m)| (&**n, &**m))
    }

    /// Hits for an address in every feed.
    pub fn ip<'m>(&'m self, a: IpAddr, now: i64, out: &mut Vec<Match<'m>>) {
        for (_, m) in &self.feeds {
            m.ip(a, now, out);
        }
    }

    /// Hits for a name (and its parents) in every feed.
    pub fn domain<'m>(&'m self, name: &str, now: i64, out: &mut Vec<Match<'m>>) {
        for (_, m) in &self.feeds {
            m.domain(name, now, out);
        }
    }

    /// Hits for a URL in every feed.
    pub fn url<'m>(&'m self, url: &str, now: i64, out: &mut Vec<Match<'m>>) {
        for (_, m) in &self.feeds {
            m.url(url, now, out);
        }
    }

    /// Hits for a fingerprint or hash in every feed.
    pub fn digest<'m>(&'m self, kind: IndicatorKind, v: &str, now: i64, out: &mut Vec<Match<'m>>) {
        for (_, m) in &self.feeds {
            m.digest(kind, v, now, out);
        }
    }
}

/// `name` lower-cased without a trailing dot, into `buf` (reused: no allocation per lookup).
pub fn lower_name<'b>(name: &str, buf: &'b mut String) -> &'b str {
    buf.clear();
    buf.extend(
        name.trim_end_matches('.')
            .chars()
            .map(|c| c.to_ascii_lowercase()),
    );
    buf
}

#[cfg(test)]
mod tests;
