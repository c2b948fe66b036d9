//! Signals and stop requests. During a run, Ctrl-C or SIGTERM (the `ctrlc` crate's
//! `termination` feature) sets a flag the loop reads after each update: it saves a checkpoint,
//! then returns `interrupted`. After a run has saved its last checkpoint, a signal ends the
//! program at once (status 130), since nothing is left to save.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static STOP_REQUESTED: Cell<bool> = const { Cell::new(false) };
}

/// Set when a run has finished and saved its last checkpoint: from then on a signal ends the
/// program at once (nothing is left to save), until the next run starts.
static AFTER_TRAINING: AtomicBool = AtomicBool::new(false);

/// Route Ctrl-C and SIGTERM to [`on_signal`] (once per process).
fn catch_ctrl_c() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // If another handler is already installed, Ctrl-C keeps its default behaviour.
        let _ = ctrlc::set_handler(on_signal);
    });
}

/// During a run: set the flag the loop checks after each update (it saves, then stops). After
/// a run (the end-of-run analysis, pictures, samples): say so and exit with status 130, as the
/// default Ctrl-C would; the checkpoint is already saved.
fn on_signal() {
    if AFTER_TRAINING.load(Ordering::SeqCst) {
        eprintln!("\ninterrupted after training; the checkpoint was saved");
        std::process::exit(130);
    }
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ask the run on this thread to stop after the current update, exactly as Ctrl-C does (a
/// checkpoint, then `interrupted` in the report). For programs that stop on their own
/// condition, and for tests of the Ctrl-C path.
pub fn request_stop() {
    STOP_REQUESTED.with(|s| s.set(true));
}

/// Whether the run should stop after this update: a signal, or [`request_stop`].
pub(super) fn stop_requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst) || STOP_REQUESTED.with(Cell::get)
}

/// A run starts: the handler is installed (once per process) and every flag cleared.
pub(super) fn run_starts() {
    catch_ctrl_c();
    AFTER_TRAINING.store(false, Ordering::SeqCst);
    INTERRUPTED.store(false, Ordering::SeqCst);
    STOP_REQUESTED.with(|s| s.set(false));
}

/// A run has ended and saved its last checkpoint: from now on a signal ends the program.
pub(super) fn run_ended() {
    AFTER_TRAINING.store(true, Ordering::SeqCst);
}
