//! wharf-net: container networking.
