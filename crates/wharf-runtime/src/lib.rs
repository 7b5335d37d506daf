//! wharf-runtime
