//! The process's panic hook. Rust's default hook prints the panic message, and a
//! message can quote the input that caused it (a slice error shows the string, with
//! any address in it). This hook reports only where the panic happened (file:line)
//! and on which thread, never the message: a panic is a bug to find by its location,
//! and no log line may carry personal data.

use std::panic::PanicHookInfo;

/// Replaces the default panic hook for the whole process.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let line = describe(info);
        if tracing::dispatcher::has_been_set() {
            tracing::error!("{line}");
        } else {
            eprintln!("postwerk: {line}");
        }
    }));
}

/// `panic at file:line in thread name`, without the panic's message.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let location = info.location().map_or_else(
        || "unknown".to_string(),
        |l| format!("{}:{}", l.file(), l.line()),
    );
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    format!("panic at {location} in thread {thread} (message withheld: it may quote input)")
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    #[test]
    fn names_location_and_thread_never_the_message() {
        let (tx, rx) = mpsc::channel();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = tx.send(super::describe(info));
        }));
        let result = std::thread::Builder::new()
            .name("smtp-session".into())
            .spawn(|| {
                let text = "kai@bücher.example";
                let cut = text.find('ü').unwrap() + 1;
                text[..cut].len()
            })
            .unwrap()
            .join();
        std::panic::set_hook(previous);
        assert!(result.is_err(), "slicing inside a character must panic");
        let line = rx.recv().unwrap();
        assert!(line.contains("src/panic.rs:"), "{line}");
        assert!(line.contains("in thread smtp-session"), "{line}");
        assert!(!line.contains("kai") && !line.contains("bücher"), "{line}");
    }
}
