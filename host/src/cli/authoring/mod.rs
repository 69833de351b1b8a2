//! `host plugin new` and `host plugin pack`: a provider written out of tree, from an empty
//! folder to an installable (and signed) package, with no checkout of this repository;
//! `host plugin call`: one sandboxed call of a package, its HTTP answered from canned files.

mod call;
mod pack;
mod scaffold;
mod scaffold_files;

pub use call::{CallArgs, call};
pub use pack::{PackArgs, pack};
pub use scaffold::{NewArgs, scaffold};
