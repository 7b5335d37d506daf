//! wharf-api
