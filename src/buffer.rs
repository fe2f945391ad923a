//! Buffer (placeholder)
