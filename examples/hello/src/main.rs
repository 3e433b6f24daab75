//! The built-in example: built by `hstore build` in a sandbox with no network, from crates in the store.

fn main() {
    let mut buffer = itoa::Buffer::new();
    let answer = buffer.format(42);
    let message = serde_json::json!({ "hello": "from the hstore sandbox", "answer": answer });
    println!("{message}");
}
