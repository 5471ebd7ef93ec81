//! Model test: `Wheel` against a plain `BTreeMap` reference, driven by proptest.
//!
//! Run with `cargo test -p wheelbeat-timer --test wheel_model`.
//!
//! The same random inserts, cancels, resets (earlier and later), single polls, full advances
//! and bounded advances (small steps, big jumps, targets in the past, deadlines in the past
//! and up to `u64::MAX`) are applied to both. After every step the wheel must agree with the
//! model: the same timers expire, never before their deadline, each exactly once; stale keys
//! are rejected; `len`, `deadline`, `contains` and `next_deadline` agree.

use std::collections::BTreeMap;

use proptest::prelude::*;
use wheelbeat_timer::{TimerKey, Wheel};

/// Where a deadline lies relative to the wheel's `now`.
#[derive(Debug, Clone)]
enum When {
    /// At or before now: due at the next poll.
    Past(u64),
    /// 0..64 ticks ahead: level 0.
    Near(u64),
    /// Up to ~260k ticks ahead: levels 1-2.
    Mid(u64),
    /// Anywhere up to `u64::MAX`.
    Far(u64),
    /// Exactly `u64::MAX`.
    Max,
}

impl When {
    fn resolve(&self, now: u64) -> u64 {
        match *self {
            When::Past(d) => now.saturating_sub(d),
            When::Near(d) => now.saturating_add(d),
            When::Mid(d) => now.saturating_add(d),
            When::Far(d) => now.saturating_add(d),
            When::Max => u64::MAX,
        }
    }
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        1 => (0u64..100).prop_map(When::Past),
        4 => (0u64..64).prop_map(When::Near),
        3 => (0u64..300_000).prop_map(When::Mid),
        1 => any::<u64>().prop_map(When::Far),
        1 => Just(When::Max),
    ]
}

/// How far a poll or advance moves time.
fn step() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..4,
        3 => 0u64..200,
        2 => 0u64..100_000,
        1 => any::<u64>(),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Insert(When),
    /// Index into every key ever handed out (live or stale).
    Cancel(usize),
    /// The same with `discard`, which leaves the entry unread (lazy, see `Wheel::discard`).
    Discard(usize),
    Reset(usize, When),
    /// One `poll` at `now + step`.
    Poll(u64),
    /// A full `advance` to `now + step`.
    Advance(u64),
    /// An `advance` to a target before `now`: must expire only what is already due.
    AdvanceBack(u64),
    /// An `advance_bounded(now + step, budget)`.
    Bounded(u64, usize),
    /// Many timers with deadlines in a narrow window: big slot lists, holes, compaction and
    /// draining in several chunks.
    Burst(u16, When),
    /// Cancel every `step`-th key from `offset` (with `discard` when `offset` is odd). Enough
    /// of them make cancelled timers outnumber pending ones: a sweep of every list.
    CancelEvery(usize, usize),
    /// Reset every `step`-th key from `offset`.
    ResetEvery(usize, usize, When),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => when().prop_map(Op::Insert),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Discard),
        3 => (any::<usize>(), when()).prop_map(|(i, w)| Op::Reset(i, w)),
        2 => step().prop_map(Op::Poll),
        2 => step().prop_map(Op::Advance),
        1 => (0u64..50).prop_map(Op::AdvanceBack),
        1 => (step(), 0usize..8).prop_map(|(s, b)| Op::Bounded(s, b)),
    ]
}

fn bulk_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..3_000, when()).prop_map(|(n, w)| Op::Burst(n, w)),
        2 => (1usize..5, 0usize..5).prop_map(|(s, o)| Op::CancelEvery(s, o)),
        2 => (1usize..5, 0usize..5, when()).prop_map(|(s, o, w)| Op::ResetEvery(s, o, w)),
        2 => step().prop_map(Op::Poll),
        3 => step().prop_map(Op::Advance),
        2 => (step(), 0usize..700).prop_map(|(s, b)| Op::Bounded(s, b)),
        2 => op(),
    ]
}

/// The reference: pending timers by serial number (the value stored with each), with their
/// deadline and value.
#[derive(Default)]
struct Model {
    pending: BTreeMap<u32, (u64, u32)>,
}

/// The documented order of one advance that started at `before`: timers already due at
/// `before` (filed in the past, or left over by a bounded advance) first, then the rest in
/// deadline order. Equivalently, `max(deadline, before)` never decreases.
fn assert_in_order(before: u64, deadlines: impl Iterator<Item = u64>) {
    let clamped: Vec<u64> = deadlines.map(|d| d.max(before)).collect();
    assert!(
        clamped.windows(2).all(|w| w[0] <= w[1]),
        "expiries out of deadline order: {clamped:?}"
    );
}

struct Harness {
    wheel: Wheel<u32>,
    model: Model,
    /// Every key ever handed out, with its serial number (the value stored with it).
    keys: Vec<TimerKey>,
    /// Whether to compare every key after every step (too slow with bursts of thousands).
    check_every_key: bool,
}

impl Harness {
    fn new() -> Self {
        Harness {
            wheel: Wheel::new(),
            model: Model::default(),
            keys: Vec::new(),
            check_every_key: true,
        }
    }

    /// Checks one expired timer against the model and removes it there.
    fn expired(&mut self, target: u64, key: TimerKey, deadline: u64, value: u32) {
        assert!(
            deadline <= target,
            "timer {value} due at {deadline} expired early, at {target}"
        );
        let expected = self.model.pending.remove(&value);
        assert_eq!(
            expected,
            Some((deadline, value)),
            "expired timer {value} (deadline {deadline}) is not pending in the model, or its deadline differs"
        );
        assert_eq!(
            self.keys[value as usize], key,
            "expired key is the one handed out"
        );
        assert!(!self.wheel.contains(key), "an expired key is stale");
    }

    fn due(&self, target: u64) -> Vec<u32> {
        let mut due: Vec<u32> = self
            .model
            .pending
            .values()
            .filter(|&&(d, _)| d <= target)
            .map(|&(_, v)| v)
            .collect();
        due.sort_unstable();
        due
    }

    fn apply(&mut self, op: &Op) {
        self.step(op);
        self.check_invariants();
    }

    /// Applies one step without the (O(timers)) invariant check.
    fn step(&mut self, op: &Op) {
        let now = self.wheel.now();
        match op {
            Op::Insert(when) => self.insert(when.resolve(now)),
            Op::Burst(n, when) => {
                let base = when.resolve(now);
                for i in 0..u64::from(*n) {
                    self.insert(base.saturating_add(i % 97));
                }
            }
            Op::CancelEvery(step, offset) => {
                for i in (*offset..self.keys.len()).step_by(*step) {
                    if offset % 2 == 1 {
                        self.step(&Op::Discard(i));
                    } else {
                        self.step(&Op::Cancel(i));
                    }
                }
            }
            Op::ResetEvery(step, offset, when) => {
                for i in (*offset..self.keys.len()).step_by(*step) {
                    self.step(&Op::Reset(i, when.clone()));
                }
            }
            Op::Cancel(i) => {
                if self.keys.is_empty() {
                    return;
                }
                let serial = (i % self.keys.len()) as u32;
                let key = self.keys[serial as usize];
                let expected = self.model.pending.remove(&serial).map(|(_, v)| v);
                assert_eq!(self.wheel.cancel(key), expected, "cancel of timer {serial}");
                assert!(!self.wheel.contains(key));
            }
            Op::Discard(i) => {
                if self.keys.is_empty() {
                    return;
                }
                let serial = (i % self.keys.len()) as u32;
                let key = self.keys[serial as usize];
                let live = self.model.pending.remove(&serial).is_some();
                assert_eq!(self.wheel.discard(key), live, "discard of timer {serial}");
                assert!(!self.wheel.contains(key));
            }
            Op::Reset(i, when) => {
                if self.keys.is_empty() {
                    return;
                }
                let serial = (i % self.keys.len()) as u32;
                let key = self.keys[serial as usize];
                let deadline = when.resolve(now);
                let live = match self.model.pending.get_mut(&serial) {
                    Some(entry) => {
                        entry.0 = deadline;
                        true
                    }
                    None => false,
                };
                assert_eq!(
                    self.wheel.reset(key, deadline),
                    live,
                    "reset of timer {serial}"
                );
            }
            Op::Poll(step) => {
                let target = now.saturating_add(*step);
                match self.wheel.poll(target) {
                    Some(e) => self.expired(target, e.key, e.deadline, e.value),
                    None => {
                        assert_eq!(self.due(target), Vec::<u32>::new(), "poll missed timers");
                        assert_eq!(self.wheel.now(), target);
                    }
                }
            }
            Op::Advance(step) => self.advance(now.saturating_add(*step)),
            Op::AdvanceBack(back) => {
                self.advance(now.saturating_sub(*back));
                assert_eq!(self.wheel.now(), now, "now never moves back");
            }
            Op::Bounded(step, budget) => {
                let target = now.saturating_add(*step);
                let fired: Vec<_> = self.wheel.advance_bounded(target, *budget).collect();
                assert_in_order(now, fired.iter().map(|e| e.deadline));
                assert!(fired.len() <= *budget, "bounded advance did too much");
                for e in fired {
                    self.expired(target.max(now), e.key, e.deadline, e.value);
                }
            }
        }
    }

    fn insert(&mut self, deadline: u64) {
        let serial = self.keys.len() as u32;
        let key = self.wheel.insert(deadline, serial);
        self.keys.push(key);
        self.model.pending.insert(serial, (deadline, serial));
    }

    /// A full advance: exactly the model's due set expires, in the documented order.
    fn advance(&mut self, target: u64) {
        let effective = target.max(self.wheel.now());
        let expected = self.due(effective);
        let before = self.wheel.now();
        let fired: Vec<_> = self.wheel.advance(target).collect();
        assert_in_order(before, fired.iter().map(|e| e.deadline));
        let mut got: Vec<u32> = fired.iter().map(|e| e.value).collect();
        got.sort_unstable();
        assert_eq!(got, expected, "advance to {target} expired a different set");
        for e in fired {
            self.expired(effective, e.key, e.deadline, e.value);
        }
        assert_eq!(self.wheel.now(), effective);
    }

    fn check_invariants(&self) {
        assert_eq!(self.wheel.len(), self.model.pending.len());
        let min = self.model.pending.values().map(|&(d, _)| d).min();
        match (self.wheel.next_deadline(), min) {
            (None, None) => {}
            (Some(next), Some(min)) => {
                assert!(
                    next <= min.max(self.wheel.now()),
                    "next_deadline {next} is later than the earliest deadline {min}"
                );
                assert!(
                    next >= self.wheel.now(),
                    "next_deadline is never in the past"
                );
            }
            (next, min) => panic!("next_deadline {next:?} but earliest deadline {min:?}"),
        }
        if self.check_every_key {
            self.check_keys();
        }
    }

    fn check_keys(&self) {
        for (serial, key) in self.keys.iter().enumerate() {
            let model = self.model.pending.get(&(serial as u32));
            assert_eq!(self.wheel.deadline(*key), model.map(|&(d, _)| d));
            assert_eq!(self.wheel.get(*key), model.map(|(_, v)| v));
        }
    }

    /// Drains everything left: the final advance to `u64::MAX` must expire every timer.
    fn finish(&mut self) {
        self.check_keys();
        self.advance(u64::MAX);
        assert!(self.wheel.is_empty());
        assert!(self.model.pending.is_empty());
        assert_eq!(self.wheel.next_deadline(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wheel_matches_the_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op);
        }
        h.finish();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn wheel_matches_the_reference_model_with_bursts(ops in prop::collection::vec(bulk_op(), 1..40)) {
        let mut h = Harness::new();
        h.check_every_key = false;
        for op in &ops {
            h.apply(op);
        }
        h.finish();
    }
}

#[test]
fn expiries_come_in_deadline_order_after_the_already_due_ones() {
    let mut wheel = Wheel::new();
    let deadlines = [7u64, 70_000, 3, 64, 4_096, 63, 1 << 40, 4_095, 65, 500];
    for d in deadlines {
        wheel.insert(d, d);
    }
    wheel.advance(10).for_each(drop);
    wheel.insert(2, 2); // already due: comes out first
    let got: Vec<u64> = wheel.advance(u64::MAX).map(|e| e.deadline).collect();
    assert_eq!(got, [2, 63, 64, 65, 500, 4_095, 4_096, 70_000, 1 << 40]);
}

#[test]
fn stale_keys_are_rejected_after_cancel_and_after_fire() {
    let mut wheel = Wheel::new();
    let cancelled = wheel.insert(10, 1);
    assert_eq!(wheel.cancel(cancelled), Some(1));
    let fired = wheel.insert(5, 2);
    assert_eq!(wheel.poll(5).map(|e| e.key), Some(fired));
    // Both slab slots are now reused by new timers.
    let a = wheel.insert(20, 3);
    let b = wheel.insert(20, 4);
    for stale in [cancelled, fired] {
        assert!(!wheel.contains(stale));
        assert_eq!(wheel.get(stale), None);
        assert_eq!(wheel.get_mut(stale), None);
        assert_eq!(wheel.deadline(stale), None);
        assert!(!wheel.reset(stale, 1));
        assert_eq!(wheel.cancel(stale), None);
    }
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.get(a), Some(&3));
    assert_eq!(wheel.get(b), Some(&4));
}

#[test]
fn slot_reuse_many_times_never_aliases_an_old_key() {
    let mut wheel = Wheel::new();
    let mut old = Vec::new();
    for i in 0..10_000u32 {
        let key = wheel.insert(u64::from(i) + 1, i);
        if i % 2 == 0 {
            assert_eq!(wheel.cancel(key), Some(i));
        } else {
            assert_eq!(wheel.poll(u64::from(i) + 1).map(|e| e.value), Some(i));
        }
        old.push(key);
    }
    let live = wheel.insert(u64::MAX, 0);
    assert!(old.iter().all(|&k| k != live && !wheel.contains(k)));
}
