//! Open-loop message traffic over rooms whose members are all connected, verified and
//! measured: the chat-mix, fan-out and room workloads are this with different rooms.
//!
//! Message i is due at `start + i / rate` whatever happened to earlier ones (no
//! coordinated omission); its body carries that due time, and every delivery's latency is
//! measured from it. Afterwards each room must have been delivered exactly
//! `acknowledged sends × members` times, with no duplicates and in sequence order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::server::BoxError;
use crate::stats::Latency;
use crate::target::{Cpu, Person, Target};
use crate::worker::now_micros;
use crate::workers::{Merged, Workers};

/// A room in the workload.
pub struct Room {
    pub id: String,
    /// Indexes into the people.
    pub members: Vec<usize>,
    /// Who sends here (indexes into the people), in turn.
    pub senders: Vec<usize>,
}

/// Rooms of one kind, sharing a fraction of the traffic.
pub struct Class {
    pub label: String,
    pub rooms: Vec<Room>,
    pub share: f64,
}

pub struct Load {
    /// Messages per second offered.
    pub rate: f64,
    pub seconds: f64,
    /// Sends in flight beyond which the target counts as saturated and the run stops.
    pub max_in_flight: usize,
}

/// What one run measured.
pub struct Outcome {
    pub offered: u64,
    pub acked: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub saturated: bool,
    /// Seconds from the first due send to the last delivery (or the drain deadline).
    pub seconds: f64,
    pub expected: u64,
    pub delivered: Merged,
    pub ack_latency: Latency,
    pub cpu: Cpu,
    pub client_cpu: f64,
    pub rss_peak_kib: u64,
    /// Rooms whose members did not all receive the same messages, in the same order, as
    /// many as were acknowledged there (see [`check_views`]).
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered.total())
    }

    /// Whether every send was acknowledged and every member of each room received exactly
    /// the room's acknowledged messages, once each and in the same order.
    pub fn verified(&self) -> bool {
        let d = &self.delivered;
        self.errors == 0
            && self.problems.is_empty()
            && self.lost() == 0
            && d.total() == self.expected
            && d.duplicates == 0
            && d.gaps == 0
            && d.out_of_order == 0
            && d.unreadable == 0
            && d.lost == 0
    }

    pub fn deliveries_per_second(&self) -> f64 {
        self.delivered.total() as f64 / self.seconds.max(1e-9)
    }

    /// Server CPU (the database's and the bus's too, when they are separate processes) per
    /// delivery.
    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.cpu.total() * 1e6 / self.delivered.total().max(1) as f64
    }
}

/// What a room should have delivered: to how many members, whose identities sum (wrapping)
/// to what ([`crate::worker::who`]), and how many messages.
pub struct Expect {
    pub members: u64,
    pub who: u64,
    pub messages: u64,
}

impl Expect {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>, messages: u64) -> Expect {
        let (mut members, mut who) = (0, 0u64);
        for t in tokens {
            members += 1;
            who = who.wrapping_add(crate::worker::who(t));
        }
        Expect { members, who, messages }
    }
}

/// Checks what each conversation's clients received (`Merged::views`) against what they
/// should have. Every member must have received every message, in the same order as every
/// other member; nobody else may have received any. Returns what is wrong (at most a few
/// lines).
pub fn check_views(views: &[crate::worker::View5], rooms: &HashMap<&str, Expect>) -> Vec<String> {
    let mut by_room: HashMap<&str, Vec<(u64, u64, u64, u64)>> = HashMap::new();
    for (conv, count, digest, clients, who) in views {
        by_room.entry(conv.as_str()).or_default().push((*count, *digest, *clients, *who));
    }
    let mut problems = Vec::new();
    for (room, e) in rooms {
        let seen = by_room.remove(room).unwrap_or_default();
        let clients: u64 = seen.iter().map(|v| v.2).sum();
        let full: Vec<_> = seen.iter().filter(|v| v.0 == e.messages).collect();
        let complete: u64 = full.iter().map(|v| v.2).sum();
        let who = full.iter().fold(0u64, |acc, v| acc.wrapping_add(v.3));
        let orders = full.iter().map(|v| v.1).collect::<std::collections::HashSet<_>>();
        let ok = if e.messages == 0 {
            clients == 0
        } else {
            clients == e.members && complete == e.members && who == e.who && orders.len() == 1
        };
        if !ok {
            let (messages, members) = (e.messages, e.members);
            problems.push(format!(
                "room {room}: {messages} messages for {members} members, but {clients} clients received some, \
                 {complete} all of them{}, in {} different orders",
                if who == e.who { "" } else { " (not the members)" },
                orders.len()
            ));
        }
    }
    for (conv, seen) in by_room {
        let clients: u64 = seen.iter().map(|v| v.2).sum();
        problems.push(format!("{clients} clients received messages of {conv}, which is not a room of this run"));
    }
    if problems.len() > 5 {
        let more = problems.len() - 5;
        problems.truncate(5);
        problems.push(format!("and {more} more"));
    }
    problems
}

/// Picks rooms for messages: classes by share, rooms within a class in turn (a fixed
/// sequence, so a run can be repeated exactly).
struct Picker {
    cumulative: Vec<f64>,
    next: Vec<usize>,
    state: u64,
}

impl Picker {
    fn new(classes: &[Class]) -> Picker {
        let total: f64 = classes.iter().map(|c| c.share).sum();
        let mut acc = 0.0;
        let cumulative = classes
            .iter()
            .map(|c| {
                acc += c.share / total;
                acc
            })
            .collect();
        Picker { cumulative, next: vec![0; classes.len()], state: 0x9E37_79B9_7F4A_7C15 }
    }

    fn pick(&mut self, classes: &[Class]) -> (usize, usize) {
        // xorshift64*: uniform enough to split traffic by share.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let u = (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        let class = self.cumulative.iter().position(|&c| u < c).unwrap_or(classes.len() - 1);
        let room = self.next[class] % classes[class].rooms.len();
        self.next[class] += 1;
        (class, room)
    }
}

/// How long the drain keeps listening after everything expected arrived.
pub const QUIET: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Acks {
    per_room: HashMap<String, u64>,
    errors: u64,
    first_errors: Vec<String>,
    latency: Option<Latency>,
}

/// Runs the load and waits for its deliveries. Every member of every room must be connected.
pub async fn run(
    target: &Target,
    workers: &mut Workers,
    people: &[Person],
    classes: &[Class],
    load: &Load,
    tag: &str,
) -> Result<Outcome, BoxError> {
    if classes.iter().any(|c| c.rooms.is_empty() || c.rooms.iter().any(|r| r.senders.is_empty())) {
        return Err("every class needs rooms, and every room senders".into());
    }
    workers.measure(tag).await?;
    let sender = target.sender(load.max_in_flight)?;
    let acks = Arc::new(Mutex::new(Acks::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let total = (load.rate * load.seconds).round() as u64;
    let mut picker = Picker::new(classes);
    let mut turn: HashMap<(usize, usize), usize> = HashMap::new();
    let mut saturated = false;

    target.reset_rss_peak();
    let cpu0 = target.cpu();
    let client0 = workers.cpu_seconds();
    let start = Instant::now();
    let start_us = now_micros();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut i = 0u64;
    'schedule: while i < total {
        // Send everything due by now, then sleep until the next one is due.
        let elapsed = start.elapsed().as_secs_f64();
        while i < total && (i as f64) / load.rate <= elapsed {
            if in_flight.load(Ordering::Relaxed) >= load.max_in_flight {
                saturated = true;
                break 'schedule;
            }
            let (c, r) = picker.pick(classes);
            let room = &classes[c].rooms[r];
            let k = turn.entry((c, r)).or_default();
            let who = people[room.senders[*k % room.senders.len()]].clone();
            *k += 1;
            let due_us = start_us + (i as f64 / load.rate * 1e6) as u64;
            let body = format!("bench {tag} t={due_us} n={i}");
            let key = format!("{tag}-{i}");
            let (sender, acks, in_flight, room_id) = (sender.clone(), acks.clone(), in_flight.clone(), room.id.clone());
            in_flight.fetch_add(1, Ordering::Relaxed);
            tasks.push(tokio::spawn(async move {
                let res = sender.send(&who, &room_id, body, &key).await;
                let took = Duration::from_micros(now_micros().saturating_sub(due_us));
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let mut a = acks.lock().await;
                match res {
                    Ok(()) => {
                        *a.per_room.entry(room_id).or_default() += 1;
                        a.latency.get_or_insert_with(Latency::new).record(took);
                    }
                    Err(e) => {
                        a.errors += 1;
                        if a.first_errors.len() < 5 {
                            a.first_errors.push(e.to_string());
                        }
                    }
                }
            }));
            i += 1;
        }
        let next_due = start + Duration::from_secs_f64(i as f64 / load.rate);
        tokio::time::sleep_until(next_due.into()).await;
    }
    for t in tasks {
        t.await?;
    }
    let mut acks = std::mem::take(&mut *acks.lock().await);

    // Who should have received what.
    let mut members: HashMap<&str, u64> = HashMap::new();
    for room in classes.iter().flat_map(|c| &c.rooms) {
        members.insert(&room.id, room.members.len() as u64);
    }
    let expected: u64 = acks.per_room.iter().map(|(r, n)| n * members.get(r.as_str()).copied().unwrap_or(0)).sum();

    // Drain: wait until everything arrived, or nothing more arrives for a while.
    let mut delivered = workers.report(false).await?;
    let mut last_progress = (delivered.total(), Instant::now());
    let mut finished_at = Instant::now();
    while delivered.total() < expected && last_progress.1.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        delivered = workers.report(false).await?;
        if delivered.total() > last_progress.0 {
            last_progress = (delivered.total(), Instant::now());
            finished_at = Instant::now();
        }
    }
    let seconds = finished_at.duration_since(start).as_secs_f64().max(load.seconds.min(1.0));
    let cpu = target.cpu() - cpu0;
    let client_cpu = workers.cpu_seconds() - client0;
    let (_, rss_peak_kib) = target.rss_kib();
    // A moment more, so that a late duplicate or a stray delivery is counted too.
    tokio::time::sleep(QUIET).await;
    let delivered = workers.report(true).await?;
    let rooms: HashMap<&str, Expect> = classes
        .iter()
        .flat_map(|c| &c.rooms)
        .map(|r| {
            let tokens = r.members.iter().map(|&m| people[m].token.as_str());
            (r.id.as_str(), Expect::new(tokens, acks.per_room.get(&r.id).copied().unwrap_or(0)))
        })
        .collect();
    let problems = check_views(&delivered.views, &rooms);
    Ok(Outcome {
        offered: i,
        acked: acks.per_room.values().sum(),
        errors: acks.errors,
        first_errors: std::mem::take(&mut acks.first_errors),
        saturated,
        seconds,
        expected,
        delivered,
        ack_latency: acks.latency.take().unwrap_or_else(Latency::new),
        cpu,
        client_cpu,
        rss_peak_kib,
        problems,
    })
}

/// Prints one outcome as a report block; returns an error if it did not verify.
pub fn report(name: &str, target: &Target, o: &Outcome, load: &Load) -> Result<(), BoxError> {
    let d = &o.delivered;
    println!(
        "{name} on {}: offered {:.0} msg/s for {:.0} s → {} sent, {} acknowledged{}{}",
        target.name(),
        load.rate,
        load.seconds,
        o.offered,
        o.acked,
        if o.errors > 0 { format!(", {} errors {:?}", o.errors, o.first_errors) } else { String::new() },
        if o.saturated { " (saturated: stopped early)" } else { "" },
    );
    println!(
        "  deliveries {} of {} expected ({:.0}/s over {:.1} s); lost {}, duplicates {}, gaps {}, out of order {}, \
         unreadable {}, clients dropped {} {:?}",
        d.total(),
        o.expected,
        o.deliveries_per_second(),
        o.seconds,
        o.lost(),
        d.duplicates,
        d.gaps,
        d.out_of_order,
        d.unreadable,
        d.lost,
        d.lost_reasons,
    );
    println!(
        "  delivery latency from the scheduled send: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; \
         acknowledgement p50 {:.2} ms, p99 {:.2} ms",
        d.latency.ms(0.5),
        d.latency.ms(0.99),
        d.latency.ms(0.999),
        d.latency.ms(1.0),
        o.ack_latency.ms(0.5),
        o.ack_latency.ms(0.99),
    );
    let mut db = String::new();
    if o.cpu.database > 0.0 {
        db.push_str(&format!(" + database {:.2} s", o.cpu.database));
    }
    if o.cpu.bus > 0.0 {
        db.push_str(&format!(" + bus {:.2} s", o.cpu.bus));
    }
    println!(
        "  server CPU {:.2} s{db} ({:.2} µs per delivery, {:.0}% of a core); server RSS peak {:.0} MiB; \
         load generator CPU {:.0}% of a core",
        o.cpu.server,
        o.cpu_us_per_delivery(),
        o.cpu.total() * 100.0 / o.seconds,
        o.rss_peak_kib as f64 / 1024.0,
        o.client_cpu * 100.0 / o.seconds,
    );
    for p in &o.problems {
        println!("  not verified: {p}");
    }
    if o.errors > 0 {
        println!("  not verified: {} sends failed", o.errors);
    }
    if o.verified() {
        println!("  verified: every acknowledged message reached every member once, in order");
        Ok(())
    } else {
        Err(format!("{name}: verification failed (see above)").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::who;

    fn view(conv: &str, count: u64, digest: u64, tokens: &[&str]) -> crate::worker::View5 {
        let sum = tokens.iter().fold(0u64, |acc, t| acc.wrapping_add(who(t)));
        (conv.to_owned(), count, digest, tokens.len() as u64, sum)
    }

    #[test]
    fn every_member_must_see_the_same_messages_in_the_same_order() {
        let rooms: HashMap<&str, Expect> =
            [("a", Expect::new(["x", "y", "z"], 10)), ("b", Expect::new(["x", "y"], 0))].into_iter().collect();
        // Three members, spread over two workers, agreeing: fine.
        assert!(check_views(&[view("a", 10, 7, &["x", "y"]), view("a", 10, 7, &["z"])], &rooms).is_empty());
        // One member missed a message, though the room's total could be made up elsewhere.
        assert_eq!(check_views(&[view("a", 10, 7, &["x", "y"]), view("a", 9, 5, &["z"])], &rooms).len(), 1);
        // Everyone got everything, but one in another order.
        assert_eq!(check_views(&[view("a", 10, 7, &["x", "y"]), view("a", 10, 8, &["z"])], &rooms).len(), 1);
        // A fourth client (not a member) received the room's messages.
        assert_eq!(check_views(&[view("a", 10, 7, &["x", "y", "z", "w"])], &rooms).len(), 1);
        // The right number of clients, but one of them not a member (and a member left out).
        let wrong = check_views(&[view("a", 10, 7, &["x", "y", "w"])], &rooms);
        assert!(wrong.len() == 1 && wrong[0].contains("not the members"), "{wrong:?}");
        // A room without messages must stay silent, and no other conversation may appear.
        let stray = check_views(
            &[view("a", 10, 7, &["x", "y", "z"]), view("b", 1, 1, &["x"]), view("c", 1, 1, &["y"])],
            &rooms,
        );
        assert_eq!(stray.len(), 2, "{stray:?}");
        // Nobody received anything.
        assert_eq!(check_views(&[], &rooms).len(), 1);
    }
}
