// `sqlx::migrate!` embeds the migration files at compile time but does not notice a new
// file; rebuild this crate whenever the migrations folder changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
