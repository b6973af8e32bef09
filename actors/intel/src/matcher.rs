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

/// A match: the hit and the indicator value it matched (the block for an address, the listed
/// parent for a domain).
#[derive(Clone, Debug, PartialEq)]
pub struct Match<'m> {
    /// The hit.
    pub hit: &'m Hit,
    /// The listed value.
    pub indicator: String,
    /// Name of the feed.
    pub feed: &'m str,
    /// Description from the feed.
    pub description: Option<&'m str>,
}

/// Disjoint, sorted address ranges, each mapped to the head of a hit chain and the block it
/// came from.
#[derive(Debug, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    heads: Vec<u32>,
    blocks: Vec<u32>,
}

impl<T: Copy + Ord> Ranges<T> {
    fn find(&self, a: T) -> Option<(u32, u32)> {
        let i = self.starts.partition_point(|s| *s <= a).checked_sub(1)?;
        (a <= self.ends[i]).then(|| (self.heads[i], self.blocks[i]))
    }
}

/// Address arithmetic the range builder needs, for u32 (IPv4) and u128 (IPv6).
trait Addr: Copy + Ord + std::fmt::Debug {
    const BITS: u8;
    fn block_end(start: Self, len: u8) -> Self;
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Option<Self>;
}

impl Addr for u32 {
    const BITS: u8 = 32;
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
    fn chain<'m>(&'m self, head: u32, now: i64, indicator: &str, out: &mut Vec<Match<'m>>) {
        let mut i = head;
        while let Some(h) = self.hits.get(i as usize) {
            if h.valid_until > now {
                out.push(Match {
                    hit: h,
                    indicator: indicator.to_owned(),
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
                    self.chain(h, now, &a.to_string(), out);
                }
                if let Some((h, block)) = self.cidr4.find(k) {
                    self.chain(h, now, self.block_name(block), out);
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return self.ip(IpAddr::V4(v4), now, out);
                }
                let k = u128::from(v6);
                if let Some(&h) = self.ip6.get(&k) {
                    self.chain(h, now, &a.to_string(), out);
                }
                if let Some((h, block)) = self.cidr6.find(k) {
                    self.chain(h, now, self.block_name(block), out);
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
        loop {
            if let Some(&h) = self.domains.get(rest) {
                self.chain(h, now, rest, out);
            }
            match rest.find('.') {
                Some(dot) => rest = &rest[dot + 1..],
                None => break,
            }
        }
    }

    /// Hits for a normalised URL.
    pub fn url<'m>(&'m self, url: &str, now: i64, out: &mut Vec<Match<'m>>) {
        if let Some(&h) = self.urls.get(url) {
            self.chain(h, now, url, out);
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
        if let Some(&h) = self.digests.get(kind.index()).and_then(|d| d.get(value)) {
            self.chain(h, now, value, out);
        }
    }
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
