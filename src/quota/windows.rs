//! The day and month a quota counts in, for a fixed UTC offset.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};

use crate::store::QuotaKind;

/// The largest offset from UTC, in minutes, that [`Windows::at`] honours (just under a day);
/// larger ones are clamped to it.
pub const MAX_UTC_OFFSET_MINUTES: i32 = 24 * 60 - 1;

/// The day and month that contain an instant, as UTC instants. `*_end` is the next reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    pub day_start: DateTime<Utc>,
    pub day_end: DateTime<Utc>,
    pub month_start: DateTime<Utc>,
    pub month_end: DateTime<Utc>,
}

impl Windows {
    /// The windows containing `now` where days start at local midnight `utc_offset_minutes`
    /// east of UTC (clamped to ±[`MAX_UTC_OFFSET_MINUTES`]). At the very ends of chrono's
    /// calendar, a window that cannot be represented is cut at the representable limit.
    pub fn at(now: DateTime<Utc>, utc_offset_minutes: i32) -> Windows {
        let minutes = utc_offset_minutes.clamp(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES);
        let shifted = FixedOffset::east_opt(minutes * 60).and_then(|zone| {
            let local = now
                .naive_utc()
                .checked_add_signed(TimeDelta::minutes(i64::from(minutes)))?;
            Some((zone, local.date()))
        });
        // Only within a day of chrono's calendar ends is there no local date: count in UTC.
        let (zone, today) = shifted.unwrap_or((Utc.fix(), now.date_naive()));
        let first_of_month = today.with_day(1);
        let first_of_next_month = first_of_month.and_then(|first| {
            if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year().checked_add(1)?, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
        });
        let start = |date: Option<NaiveDate>| {
            date.and_then(|d| midnight(d, &zone))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let end = |date: Option<NaiveDate>| {
            date.and_then(|d| midnight(d, &zone))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        Windows {
            day_start: start(Some(today)),
            day_end: end(today.succ_opt()),
            month_start: start(first_of_month),
            month_end: end(first_of_next_month),
        }
    }

    /// When the allowance of `kind` is next renewed; concurrent slots free up when jobs end,
    /// not at a time.
    pub fn resets_at(&self, kind: QuotaKind) -> Option<DateTime<Utc>> {
        match kind {
            QuotaKind::Daily => Some(self.day_end),
            QuotaKind::Monthly => Some(self.month_end),
            QuotaKind::Concurrent => None,
        }
    }
}

/// Local midnight of `date` in `zone`, as a UTC instant.
fn midnight(date: NaiveDate, zone: &FixedOffset) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&date.and_time(NaiveTime::MIN))
        .single()
        .map(|local| local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid test instant")
    }

    #[test]
    fn utc_windows_in_the_middle_of_a_month() {
        let w = Windows::at(utc(2025, 6, 17, 13, 45), 0);
        assert_eq!(w.day_start, utc(2025, 6, 17, 0, 0));
        assert_eq!(w.day_end, utc(2025, 6, 18, 0, 0));
        assert_eq!(w.month_start, utc(2025, 6, 1, 0, 0));
        assert_eq!(w.month_end, utc(2025, 7, 1, 0, 0));
    }

    #[test]
    fn exact_midnight_opens_a_window_and_the_instant_before_closes_the_last() {
        let w = Windows::at(utc(2025, 7, 1, 0, 0), 0);
        assert_eq!(w.day_start, utc(2025, 7, 1, 0, 0));
        assert_eq!(w.month_start, utc(2025, 7, 1, 0, 0));
        let before = Windows::at(utc(2025, 7, 1, 0, 0) - TimeDelta::nanoseconds(1), 0);
        assert_eq!(before.day_start, utc(2025, 6, 30, 0, 0));
        assert_eq!(before.day_end, utc(2025, 7, 1, 0, 0));
        assert_eq!(before.month_start, utc(2025, 6, 1, 0, 0));
        assert_eq!(before.month_end, utc(2025, 7, 1, 0, 0));
    }

    #[test]
    fn year_rollover() {
        let w = Windows::at(utc(2024, 12, 31, 23, 59), 0);
        assert_eq!(w.day_end, utc(2025, 1, 1, 0, 0));
        assert_eq!(w.month_start, utc(2024, 12, 1, 0, 0));
        assert_eq!(w.month_end, utc(2025, 1, 1, 0, 0));
        let w = Windows::at(utc(2025, 1, 1, 0, 1), 0);
        assert_eq!(w.day_start, utc(2025, 1, 1, 0, 0));
        assert_eq!(w.month_start, utc(2025, 1, 1, 0, 0));
        assert_eq!(w.month_end, utc(2025, 2, 1, 0, 0));
    }

    #[test]
    fn leap_years_and_february() {
        // 2024 is a leap year: 29 February exists and the month has 29 days.
        let w = Windows::at(utc(2024, 2, 28, 12, 0), 0);
        assert_eq!(w.day_end, utc(2024, 2, 29, 0, 0));
        assert_eq!(w.month_end - w.month_start, TimeDelta::days(29));
        let w = Windows::at(utc(2024, 2, 29, 23, 0), 0);
        assert_eq!(w.day_start, utc(2024, 2, 29, 0, 0));
        assert_eq!(w.day_end, utc(2024, 3, 1, 0, 0));
        // 2025 is not; 1900 is not (century); 2000 is (divisible by 400).
        let w = Windows::at(utc(2025, 2, 28, 12, 0), 0);
        assert_eq!(w.day_end, utc(2025, 3, 1, 0, 0));
        assert_eq!(w.month_end - w.month_start, TimeDelta::days(28));
        let w = Windows::at(utc(1900, 2, 10, 0, 0), 0);
        assert_eq!(w.month_end, utc(1900, 3, 1, 0, 0));
        let w = Windows::at(utc(2000, 2, 10, 0, 0), 0);
        assert_eq!(w.month_end, utc(2000, 3, 1, 0, 0));
    }

    #[test]
    fn positive_offset_moves_the_boundaries_earlier_in_utc() {
        // Korea, UTC+9: local midnight is 15:00 UTC the day before.
        let kst = 9 * 60;
        let w = Windows::at(utc(2025, 3, 10, 14, 59), kst);
        assert_eq!(w.day_start, utc(2025, 3, 9, 15, 0));
        assert_eq!(w.day_end, utc(2025, 3, 10, 15, 0));
        let w = Windows::at(utc(2025, 3, 10, 15, 0), kst);
        assert_eq!(w.day_start, utc(2025, 3, 10, 15, 0));
        // 31 December 15:00 UTC is 1 January in Korea: a new year, a new month.
        let w = Windows::at(utc(2024, 12, 31, 15, 30), kst);
        assert_eq!(w.day_start, utc(2024, 12, 31, 15, 0));
        assert_eq!(w.month_start, utc(2024, 12, 31, 15, 0));
        assert_eq!(w.month_end, utc(2025, 1, 31, 15, 0));
        // Half-hour offsets (India, UTC+5:30).
        let w = Windows::at(utc(2025, 5, 1, 0, 0), 330);
        assert_eq!(w.day_start, utc(2025, 4, 30, 18, 30));
        assert_eq!(w.month_start, utc(2025, 4, 30, 18, 30));
        assert_eq!(w.month_end, utc(2025, 5, 31, 18, 30));
    }

    #[test]
    fn negative_offset_moves_the_boundaries_later_in_utc() {
        // New York winter time, UTC-5: local midnight is 05:00 UTC.
        let est = -5 * 60;
        let w = Windows::at(utc(2025, 1, 1, 4, 59), est);
        // Still 31 December locally.
        assert_eq!(w.day_start, utc(2024, 12, 31, 5, 0));
        assert_eq!(w.day_end, utc(2025, 1, 1, 5, 0));
        assert_eq!(w.month_start, utc(2024, 12, 1, 5, 0));
        assert_eq!(w.month_end, utc(2025, 1, 1, 5, 0));
        // Leap day seen from UTC-10 (Hawaii).
        let w = Windows::at(utc(2024, 3, 1, 9, 0), -600);
        assert_eq!(w.day_start, utc(2024, 2, 29, 10, 0));
        assert_eq!(w.month_start, utc(2024, 2, 1, 10, 0));
        assert_eq!(w.month_end, utc(2024, 3, 1, 10, 0));
    }

    #[test]
    fn every_instant_lies_in_its_windows_and_days_last_a_day() {
        for offset in [-720, -600, -330, -1, 0, 1, 330, 540, 840, 1439, -1439] {
            let mut now = utc(2023, 12, 30, 0, 7);
            while now < utc(2024, 3, 3, 0, 0) {
                let w = Windows::at(now, offset);
                assert!(w.day_start <= now && now < w.day_end, "{now} at {offset}");
                assert!(
                    w.month_start <= now && now < w.month_end,
                    "{now} at {offset}"
                );
                assert_eq!(w.day_end - w.day_start, TimeDelta::days(1));
                assert!(w.month_start <= w.day_start && w.day_end <= w.month_end);
                let days = (w.month_end - w.month_start).num_days();
                assert!((28..=31).contains(&days), "{days}-day month at {now}");
                now += TimeDelta::minutes(97);
            }
        }
    }

    #[test]
    fn absurd_offsets_are_clamped_and_calendar_ends_do_not_panic() {
        let now = utc(2025, 6, 17, 13, 45);
        assert_eq!(
            Windows::at(now, i32::MAX),
            Windows::at(now, MAX_UTC_OFFSET_MINUTES)
        );
        assert_eq!(
            Windows::at(now, i32::MIN),
            Windows::at(now, -MAX_UTC_OFFSET_MINUTES)
        );
        let w = Windows::at(DateTime::<Utc>::MAX_UTC, 0);
        assert_eq!(w.day_end, DateTime::<Utc>::MAX_UTC);
        assert_eq!(w.month_end, DateTime::<Utc>::MAX_UTC);
        let w = Windows::at(DateTime::<Utc>::MIN_UTC, -600);
        assert!(w.day_start <= w.day_end);
    }

    #[test]
    fn resets_at_names_the_window_end() {
        let w = Windows::at(utc(2025, 6, 17, 13, 45), 0);
        assert_eq!(w.resets_at(QuotaKind::Daily), Some(utc(2025, 6, 18, 0, 0)));
        assert_eq!(w.resets_at(QuotaKind::Monthly), Some(utc(2025, 7, 1, 0, 0)));
        assert_eq!(w.resets_at(QuotaKind::Concurrent), None);
    }
}
