//! Memory held per waiting interaction, measured with a counting allocator.
//!
//! Each waiting interaction carries what a real one does: a queue, a channel, a contact, one
//! extra requirement, an external reference and two attributes. The figure (bytes live per
//! waiting interaction, 100k waiting) is printed and must stay under 1 KiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use guichet::core::{
    AgentConfig, Channel, Command, ContactId, InteractionId, InteractionSpec, QueueConfig,
    Requirement, Router, Timestamp,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_waiting_interaction_costs_under_one_kibibyte() {
    const N: usize = 100_000;
    let now = Timestamp::from_secs(1_700_000_000);
    let mut router = Router::new();
    for q in 0..100 {
        let config =
            QueueConfig::new(format!("queue-{q:03}")).requiring(format!("skill:{}", q % 50), 1);
        router.handle(now, Command::UpsertQueue { config }).unwrap();
    }
    // Agents exist but are offline: everything waits.
    for a in 0..1_000 {
        let config =
            AgentConfig::new(format!("agent-{a:04}")).with_skill(format!("skill:{}", a % 50), 3);
        router.handle(now, Command::UpsertAgent { config }).unwrap();
    }
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..N {
        // Built inside the measured window: its strings and attributes count too.
        let mut spec = InteractionSpec::new(
            InteractionId::from_u128(i as u128 + 1),
            Channel::ALL[i % 4],
            format!("queue-{:03}", i % 100),
        );
        spec.contact = Some(ContactId::new(format!("+3361234{i:04}")));
        spec.requirements = vec![Requirement::new(
            if i % 2 == 0 { "lang:fr" } else { "lang:en" },
            2,
        )];
        spec.external_ref = Some(format!("CA{i:032x}").into());
        spec.attributes.insert("topic", "housing");
        spec.attributes.insert("ivr_path", "1>2");
        // The events are what the engine journals; they are dropped here as it would after commit.
        let events = router
            .handle(now, Command::CreateInteraction { spec })
            .unwrap();
        drop(events);
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(router.waiting_count(), N);
    let per = (after - before) as f64 / N as f64;
    println!("live bytes per waiting interaction: {per:.0}");
    assert!(per < 1024.0, "{per:.0} bytes per waiting interaction");
}
