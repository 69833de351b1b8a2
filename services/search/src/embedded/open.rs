//! Opens the index folder, creating it when missing and rebuilding it when unusable.

use std::io;
use std::path::Path;

use tantivy::directory::MmapDirectory;
use tantivy::schema::Schema;
use tantivy::{Index, IndexSettings, TantivyError};

use super::engine_error;
use crate::SearchError;

/// An index read from disk, and whether it was made afresh (so the host must re-index).
pub(super) struct Opened {
    pub index: Index,
    pub recreated: bool,
}

/// Opens the index in `dir`. A missing index is created; one written with another schema,
/// by an incompatible tantivy version, or found corrupt, is wiped and created empty: the
/// database can always rebuild it. Other errors (permissions, a full disk) are returned.
pub(super) fn open_or_rebuild(dir: &Path, schema: &Schema) -> Result<Opened, SearchError> {
    std::fs::create_dir_all(dir).map_err(|err| io_error(dir, err))?;
    let directory = MmapDirectory::open(dir).map_err(|err| engine_error(err.into()))?;
    if Index::exists(&directory).map_err(|err| engine_error(err.into()))? {
        match Index::open(directory.clone()) {
            Ok(index) if index.schema() == *schema => return Ok(Opened { index, recreated: false }),
            Ok(_) => tracing::warn!(dir = %dir.display(), "search index has another schema; rebuilding it"),
            Err(err @ (TantivyError::DataCorruption(_) | TantivyError::IncompatibleIndex(_))) => {
                tracing::warn!(dir = %dir.display(), error = %err, "search index unusable; rebuilding it");
            }
            Err(err) => return Err(engine_error(err)),
        }
        drop(directory);
        wipe(dir)?;
    }
    let directory = MmapDirectory::open(dir).map_err(|err| engine_error(err.into()))?;
    let index = Index::create(directory, schema.clone(), IndexSettings::default()).map_err(engine_error)?;
    Ok(Opened { index, recreated: true })
}

/// Removes what is inside `dir`, which holds a tantivy index (it had a `meta.json`).
fn wipe(dir: &Path) -> Result<(), SearchError> {
    for entry in std::fs::read_dir(dir).map_err(|err| io_error(dir, err))? {
        let path = entry.map_err(|err| io_error(dir, err))?.path();
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(|err| io_error(&path, err))?;
    }
    Ok(())
}

fn io_error(path: &Path, err: io::Error) -> SearchError {
    SearchError::Unavailable(format!("search index folder {}: {err}", path.display()))
}
