//! Go's `time.ParseDuration`, for HEALTHCHECK's `--interval` and friends: the one parser in
//! `wharf_api::units`.

/// Nanoseconds, or Go's error text.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    wharf_api::units::go_duration(s).map_err(|e| e.0)
}
