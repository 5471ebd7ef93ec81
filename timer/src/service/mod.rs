//! `Timer`: the gtimer-style task service on top of [`Wheel`](crate::Wheel). (to be written)
