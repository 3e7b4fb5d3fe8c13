//! cgofix: the policy half.
