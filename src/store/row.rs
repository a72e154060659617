//! Reading a result row the same way on both backends: [`RowRead`] over SQLite's
//! `rusqlite::Row` and PostgreSQL's `postgres::Row`, so that each table's row is decoded into
//! its domain type by one function (`surveys.rs`, `users.rs`, `tokens.rs`, …) whichever
//! backend read it. Each backend keeps its own error: SQLite's decoders return
//! `rusqlite::Error` (mapped with the file's path as before), PostgreSQL's a text that the
//! caller turns into [`StoreError::Decode`](super::StoreError::Decode).

/// A value both drivers can read from a column (text, integers, booleans, their options).
pub(crate) trait Cell:
    rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>
{
}

impl<T> Cell for T where T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

/// A result row of either backend, read by column index.
pub(crate) trait RowRead {
    /// The backend's decoding error.
    type Error;

    /// The value of column `i`.
    fn cell<T: Cell>(&self, i: usize) -> Result<T, Self::Error>;

    /// The first columns as a tuple (`(String, i64, ..)`), in order.
    fn cells<T: Cells<Self>>(&self) -> Result<T, Self::Error>
    where
        Self: Sized,
    {
        T::read(self)
    }

    /// The error for column `i`, read but not valid for the domain (`detail` says what it
    /// held, `cause` why it was refused).
    fn invalid<E>(i: usize, detail: String, cause: E) -> Self::Error
    where
        E: std::error::Error + Send + Sync + 'static;
}

impl RowRead for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn cell<T: Cell>(&self, i: usize) -> Result<T, rusqlite::Error> {
        self.get(i)
    }

    fn invalid<E>(i: usize, _detail: String, cause: E) -> rusqlite::Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(cause))
    }
}

impl RowRead for postgres::Row {
    type Error = String;

    fn cell<T: Cell>(&self, i: usize) -> Result<T, String> {
        self.try_get(i).map_err(|e| format!("column {i}: {e}"))
    }

    fn invalid<E>(_i: usize, detail: String, cause: E) -> String
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        format!("{detail}: {cause}")
    }
}

/// A tuple of [`Cell`]s read from the first columns of a row, in order.
pub(crate) trait Cells<R: RowRead>: Sized {
    /// Reads the tuple from `row`.
    fn read(row: &R) -> Result<Self, R::Error>;
}

macro_rules! cells {
    ($($t:ident $i:tt),+) => {
        impl<R: RowRead, $($t: Cell),+> Cells<R> for ($($t,)+) {
            fn read(row: &R) -> Result<Self, R::Error> {
                Ok(($(row.cell::<$t>($i)?,)+))
            }
        }
    };
}

cells!(A 0, B 1, C 2, D 3, E 4);
cells!(A 0, B 1, C 2, D 3, E 4, F 5);
cells!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
