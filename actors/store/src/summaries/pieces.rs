//! How a window is read from a rollup: as signed pieces of event rows, whole hours, whole days
//! and rolling spans whose sums add up to exactly the window (see [`pieces`] and
//! [`pieces_with`]). Only sums can be read this way; minimums and maximums use the additive
//! tiers of the parent module.

use crate::queries::Window;
use crate::StoreError;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Where a piece of a window is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The event rows.
    Rows,
    /// The hourly rollup.
    Hourly,
    /// The whole days of the rollup (`<x>_rollup_days`: the daily rollup and the hours not
    /// folded into it yet, see the `daily_fold` migration).
    Daily,
    /// The rolling sums over a span of this many hours (`rolling_sums` migration), which
    /// hold the whole hours of [`Span`].
    Span(i32),
}

impl Source {
    /// The table of this tier of the rollup `hourly` (`<x>_rollup`): the days are read from
    /// the view `<x>_rollup_days`, the rolling sums from `<x>_rolling`.
    pub(super) fn table(self, hourly: &str) -> String {
        match self {
            Source::Daily => format!("{hourly}_days"),
            Source::Span(_) => format!("{}_rolling", hourly.trim_end_matches("_rollup")),
            _ => hourly.to_owned(),
        }
    }

    /// The condition choosing a piece's rows of this tier's table, `from` and `to` its range.
    pub(super) fn range(self, from: &str, to: &str) -> String {
        match self {
            Source::Span(hours) => format!("span_hours = {hours}"),
            _ => format!("bucket >= {from} AND bucket < {to}"),
        }
    }
}

/// The whole hours `[lo, hi)` a rolling sum holds now, over its span of `hours`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, QueryableByName)]
pub struct Span {
    /// The span, in hours.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub hours: i32,
    /// First hour held.
    #[diesel(sql_type = Timestamptz)]
    pub lo: DateTime<Utc>,
    /// End of the hours held (exclusive).
    #[diesel(sql_type = Timestamptz)]
    pub hi: DateTime<Utc>,
}

/// The spans the rolling sums of `rollup` ("talker", "tls") hold now.
pub async fn spans(conn: &mut AsyncPgConnection, rollup: &str) -> Result<Vec<Span>, StoreError> {
    Ok(
        diesel::sql_query(
            "SELECT span_hours AS hours, lo, hi FROM rolling_spans WHERE rollup = $1",
        )
        .bind::<Text, _>(rollup)
        .load(conn)
        .await?,
    )
}

/// The range `[from, to)` of one source, its counts added (`sign` 1) or subtracted (-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// What is read.
    pub source: Source,
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, exclusive.
    pub to: DateTime<Utc>,
    /// 1 or -1.
    pub sign: i64,
}

/// What reading one day of a rollup costs, in hours of it: a day holds each value once, an hour
/// each value seen that hour, so at a busy sensor a day reads like a few hours.
const DAY_COST_IN_HOURS: i64 = 4;

fn floor(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn ceil(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    match floor(t, unit) {
        f if f == t => t,
        f => f + unit,
    }
}

/// The pieces whose signed sum is exactly `w`: the whole days inside it from the daily rollup;
/// each partial day either from its whole hours (hourly rollup) and rows, or as its whole day
/// minus the hours and rows outside the window, whichever reads less (hours after `now` hold
/// nothing yet and cost nothing).
pub fn pieces(w: Window, now: DateTime<Utc>) -> Vec<Piece> {
    let day = TimeDelta::days(1);
    let end = w.until + TimeDelta::microseconds(1);
    let mut out = Vec::new();
    let first = floor(w.since, day);
    let (d1, d2) = (ceil(w.since, day), floor(end, day));
    if d1 >= d2 {
        // no whole day: one partial day, or the ends of two neighbouring ones
        day_pieces(first, w.since, end.min(first + day), now, &mut out);
        if end > first + day {
            day_pieces(first + day, first + day, end, now, &mut out);
        }
        return out;
    }
    if w.since < d1 {
        day_pieces(first, w.since, d1, now, &mut out);
    }
    out.push(Piece {
        source: Source::Daily,
        from: d1,
        to: d2,
        sign: 1,
    });
    if end > d2 {
        day_pieces(d2, d2, end, now, &mut out);
    }
    out
}

/// The pieces of `w` as [`pieces`] makes them, except that the whole hours of the largest
/// rolling span inside `w` are read from it.
pub fn pieces_with(w: Window, now: DateTime<Utc>, spans: &[Span]) -> Vec<Piece> {
    let end = w.until + TimeDelta::microseconds(1);
    let Some(span) = spans
        .iter()
        .filter(|s| s.lo >= w.since && s.hi <= end && s.hi > s.lo)
        .max_by_key(|s| s.hi - s.lo)
    else {
        return pieces(w, now);
    };
    let mut out = Vec::new();
    if w.since < span.lo {
        out.extend(pieces(
            Window {
                since: w.since,
                until: span.lo - TimeDelta::microseconds(1),
            },
            now,
        ));
    }
    out.push(Piece {
        source: Source::Span(span.hours),
        from: span.lo,
        to: span.hi,
        sign: 1,
    });
    if end > span.hi {
        out.extend(pieces(
            Window {
                since: span.hi,
                until: w.until,
            },
            now,
        ));
    }
    out
}

/// The pieces of `w` as of now, reading the spans the rolling sums of `rollup` hold
/// (`rolling_spans.rollup`: "talker", "tls", "alert", "alert_pair").
pub(super) async fn pieces_held(
    conn: &mut AsyncPgConnection,
    rollup: &str,
    w: Window,
) -> Result<Vec<Piece>, StoreError> {
    let held = spans(conn, rollup).await?;
    Ok(pieces_with(w, Utc::now(), &held))
}

/// What reading one hour of a rollup costs, in minutes of rows: an hour holds each value once,
/// the rows every event.
const HOUR_COST_IN_MINUTES: i64 = 10;

/// The pieces of `[from, to)`, inside one hour: its rows, or the hour's rollup minus the rows
/// outside the range, whichever reads less (rows after `now` do not exist yet and cost nothing).
fn hour_pieces(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>, out: &mut Vec<Piece>) {
    if to <= from {
        return;
    }
    let hour = TimeDelta::hours(1);
    debug_assert!(
        to <= floor(from, hour) + hour,
        "{from}..{to} crosses an hour"
    );
    let (start, next) = (floor(from, hour), floor(from, hour) + hour);
    let inside = (to - from).num_minutes();
    let outside = (from - start).num_minutes() + (next.min(now.max(to)) - to).num_minutes();
    if outside + HOUR_COST_IN_MINUTES < inside {
        push(out, Source::Hourly, start, next, 1);
        push(out, Source::Rows, start, from, -1);
        push(out, Source::Rows, to, next, -1);
    } else {
        push(out, Source::Rows, from, to, 1);
    }
}

/// The pieces of `[from, to)` within the day starting at `day`.
fn day_pieces(
    day: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Vec<Piece>,
) {
    let hour = TimeDelta::hours(1);
    let next = day + TimeDelta::days(1);
    let (a, b) = (ceil(from, hour), floor(to, hour));
    let inside = (b - a).num_hours().max(0);
    let before = (floor(from, hour) - day).num_hours();
    let after = (next.min(ceil(now, hour).max(ceil(to, hour))) - ceil(to, hour))
        .num_hours()
        .max(0);
    if before + after + DAY_COST_IN_HOURS < inside {
        push(out, Source::Daily, day, next, 1);
        push(out, Source::Hourly, day, floor(from, hour), -1);
        push(out, Source::Rows, floor(from, hour), from, -1);
        push(out, Source::Rows, to, ceil(to, hour), -1);
        push(out, Source::Hourly, ceil(to, hour), next, -1);
    } else if b > a {
        hour_pieces(from, a, now, out);
        push(out, Source::Hourly, a, b, 1);
        hour_pieces(b, to, now, out);
    } else {
        // within an hour, or across one boundary
        let cut = a.min(to);
        hour_pieces(from, cut, now, out);
        hour_pieces(cut, to, now, out);
    }
}

/// Adds the piece unless its range is empty.
fn push(out: &mut Vec<Piece>, source: Source, from: DateTime<Utc>, to: DateTime<Utc>, sign: i64) {
    if to > from {
        out.push(Piece {
            source,
            from,
            to,
            sign,
        });
    }
}

/// The pieces as one UNION ALL of `select(source, sign, from, to)`, with `from` and `to` the
/// placeholders of the piece's range, numbered from `$first` (none for a rolling span, which
/// has no range to choose); and the times to bind, in order.
pub(super) fn union_of(
    pieces: &[Piece],
    first: usize,
    select: impl Fn(Source, i64, &str, &str) -> String,
) -> (String, Vec<DateTime<Utc>>) {
    let mut parts = Vec::with_capacity(pieces.len());
    let mut times = Vec::with_capacity(2 * pieces.len());
    for p in pieces {
        if let Source::Span(_) = p.source {
            parts.push(select(p.source, p.sign, "", ""));
            continue;
        }
        let n = first + times.len();
        parts.push(select(
            p.source,
            p.sign,
            &format!("${n}::timestamptz"),
            &format!("${}::timestamptz", n + 1),
        ));
        times.extend([p.from, p.to]);
    }
    (parts.join(" UNION ALL "), times)
}

/// `q` with `times` bound after its other parameters.
pub(super) fn bind_times(
    mut q: BoxedSqlQuery<'static, Pg, SqlQuery>,
    times: &[DateTime<Utc>],
) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    for t in times {
        q = q.bind::<Timestamptz, _>(*t);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The signed number of pieces covering `t`: 1 inside the window, 0 outside.
    fn coverage(pieces: &[Piece], t: DateTime<Utc>) -> i64 {
        pieces
            .iter()
            .filter(|p| p.from <= t && t < p.to)
            .map(|p| p.sign)
            .sum()
    }

    #[test]
    fn pieces_add_up_to_the_window_exactly() {
        let now = at("2026-12-06T12:30:00Z");
        let windows = [
            ("2026-12-01T10:20:00Z", "2026-12-05T13:05:00Z"),
            ("2026-12-01T01:20:00Z", "2026-12-03T22:40:00Z"),
            ("2026-12-02T00:30:00Z", "2026-12-02T23:10:00Z"),
            ("2026-12-02T10:20:00Z", "2026-12-02T10:40:00Z"),
            ("2026-12-02T23:20:00Z", "2026-12-03T00:40:00Z"),
            ("2026-12-02T00:00:00Z", "2026-12-02T23:59:59.999999Z"),
            ("2026-11-29T12:30:00Z", "2026-12-06T12:30:00Z"),
            ("2026-12-05T12:30:00Z", "2026-12-06T12:30:00Z"),
            ("2026-12-05T00:50:00Z", "2026-12-06T00:50:00Z"),
        ];
        // a rolling span of a day ending at 12:00 on 2026-12-03, and one of a week ending now
        let spans = [
            Span {
                hours: 24,
                lo: at("2026-12-02T13:00:00Z"),
                hi: at("2026-12-03T12:00:00Z"),
            },
            Span {
                hours: 168,
                lo: at("2026-11-29T13:00:00Z"),
                hi: at("2026-12-06T12:00:00Z"),
            },
        ];
        let cases = windows.iter().flat_map(|&(a, b)| {
            let w = Window {
                since: at(a),
                until: at(b),
            };
            [(w, pieces(w, now)), (w, pieces_with(w, now, &spans))]
        });
        for (w, p) in cases {
            let mut t = w.since - TimeDelta::hours(30);
            while t < w.until + TimeDelta::hours(30) {
                for probe in [t, t - TimeDelta::microseconds(1)] {
                    let inside = probe >= w.since && probe <= w.until;
                    assert_eq!(
                        coverage(&p, probe),
                        i64::from(inside),
                        "{probe} in {w:?}: {p:?}"
                    );
                }
                t += TimeDelta::minutes(10);
            }
            for probe in [w.since, w.until, w.until + TimeDelta::microseconds(1)] {
                let inside = probe >= w.since && probe <= w.until;
                assert_eq!(coverage(&p, probe), i64::from(inside), "{probe} in {w:?}");
            }
            // rollup pieces are whole buckets
            for piece in &p {
                let unit = match piece.source {
                    Source::Rows | Source::Span(_) => continue,
                    Source::Hourly => TimeDelta::hours(1),
                    Source::Daily => TimeDelta::days(1),
                };
                assert_eq!(floor(piece.from, unit), piece.from, "{piece:?}");
                assert_eq!(floor(piece.to, unit), piece.to, "{piece:?}");
            }
        }
    }

    #[test]
    fn a_day_mostly_inside_is_read_as_the_day_minus_its_outside() {
        let now = at("2026-12-06T12:30:00Z");
        // a week back from 00:50: the first day is 23 hours in, the last has just begun
        let p = pieces(
            Window {
                since: at("2026-11-29T00:50:00Z"),
                until: at("2026-12-06T00:50:00Z"),
            },
            now,
        );
        // no hours of the first day; of the last, only its first hour (minus what is after
        // the window's end), which holds more of the window than outside it
        let hourly: Vec<_> = p.iter().filter(|p| p.source == Source::Hourly).collect();
        assert_eq!(
            hourly,
            [&Piece {
                source: Source::Hourly,
                from: at("2026-12-06T00:00:00Z"),
                to: at("2026-12-06T01:00:00Z"),
                sign: 1
            }],
            "{p:?}"
        );
        assert!(p.contains(&Piece {
            source: Source::Daily,
            from: at("2026-11-29T00:00:00Z"),
            to: at("2026-11-30T00:00:00Z"),
            sign: 1
        }));
        // the last 24 hours at 12:30: today so far is its day (nothing after now to subtract)
        let p = pieces(
            Window {
                since: at("2026-12-05T12:30:00Z"),
                until: now,
            },
            now,
        );
        assert!(p.iter().any(|p| p.source == Source::Daily
            && p.from == at("2026-12-06T00:00:00Z")
            && p.sign == 1));
    }

    #[test]
    fn a_partial_hour_is_read_from_the_rollup_when_most_of_it_is_inside() {
        let now = at("2026-12-06T12:50:00Z");
        let rows = |p: &[Piece]| -> Vec<(DateTime<Utc>, DateTime<Utc>, i64)> {
            p.iter()
                .filter(|p| p.source == Source::Rows)
                .map(|p| (p.from, p.to, p.sign))
                .collect()
        };
        // the hour now under way: its rollup, minus its rows before the window and after it
        // (none yet)
        let p = pieces(
            Window {
                since: at("2026-12-06T12:05:00Z"),
                until: now,
            },
            now,
        );
        assert!(p.iter().any(|p| p.source == Source::Hourly && p.sign == 1));
        assert_eq!(
            rows(&p),
            [
                (at("2026-12-06T12:00:00Z"), at("2026-12-06T12:05:00Z"), -1),
                (
                    now + TimeDelta::microseconds(1),
                    at("2026-12-06T13:00:00Z"),
                    -1
                )
            ]
        );
        // ten minutes of an hour long past: its rows
        let w = Window {
            since: at("2026-12-05T08:20:00Z"),
            until: at("2026-12-05T08:30:00Z"),
        };
        assert_eq!(
            pieces(w, now)
                .iter()
                .map(|p| (p.source, p.sign))
                .collect::<Vec<_>>(),
            [(Source::Rows, 1)]
        );
    }

    #[test]
    fn the_largest_rolling_span_inside_a_window_is_read_whole() {
        let now = at("2026-12-06T12:30:00Z");
        let day = Span {
            hours: 24,
            lo: at("2026-12-05T13:00:00Z"),
            hi: at("2026-12-06T12:00:00Z"),
        };
        let week = Span {
            hours: 168,
            lo: at("2026-11-29T13:00:00Z"),
            hi: at("2026-12-06T12:00:00Z"),
        };
        let last_week = Window {
            since: now - TimeDelta::hours(168),
            until: now,
        };
        let p = pieces_with(last_week, now, &[day, week]);
        let read: Vec<_> = p
            .iter()
            .filter(|p| matches!(p.source, Source::Span(_)))
            .collect();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].source, Source::Span(168));
        // besides the span, only the two partial hours at the ends, from rows or hours
        assert!(p.iter().all(|p| p.source != Source::Daily), "{p:?}");
        // a span reaching past the window is not used
        let p = pieces_with(
            Window {
                since: now - TimeDelta::hours(168),
                until: at("2026-12-06T11:00:00Z"),
            },
            now,
            &[week],
        );
        assert!(p.iter().all(|p| !matches!(p.source, Source::Span(_))));
    }
}
