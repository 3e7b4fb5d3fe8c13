//! The mechanism half of cgofix, free of policy.
