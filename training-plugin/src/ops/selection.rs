//! Which examples of the joined view a command reads, by the filters `export` and
//! `review` share: cascade, cell and bounds on the confidence. Each filter given adds
//! one condition whose value travels as a query parameter (never in the SQL text), and
//! [`Selection::bind`] binds exactly the parameters those conditions name.

use crate::output;
use clickhouse::query::Query;

/// The shared filters; `None` leaves that filter out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    pub cascade: Option<String>,
    pub cell: Option<String>,
    /// Examples without an assessed confidence never qualify when set, as in rvbbit.
    pub min_confidence: Option<f32>,
    /// Examples without an assessed confidence never qualify when set.
    pub max_confidence: Option<f32>,
}

impl Selection {
    /// The SQL conditions of the filters given, in a fixed order, naming the parameters
    /// `cascade`, `cell`, `min_confidence` and `max_confidence`.
    pub fn conditions(&self) -> Vec<&'static str> {
        let mut conditions = Vec::new();
        if self.cascade.is_some() {
            conditions.push("cascade_id = {cascade:String}");
        }
        if self.cell.is_some() {
            conditions.push("cell_name = {cell:String}");
        }
        if self.min_confidence.is_some() {
            conditions.push("confidence >= {min_confidence:Float32}");
        }
        if self.max_confidence.is_some() {
            conditions.push("confidence <= {max_confidence:Float32}");
        }
        conditions
    }

    /// `query` with the values of [`Selection::conditions`] bound.
    pub fn bind(&self, mut query: Query) -> Query {
        if let Some(cascade) = &self.cascade {
            query = query.param("cascade", cascade);
        }
        if let Some(cell) = &self.cell {
            query = query.param("cell", cell);
        }
        if let Some(min) = self.min_confidence {
            query = query.param("min_confidence", min);
        }
        if let Some(max) = self.max_confidence {
            query = query.param("max_confidence", max);
        }
        query
    }

    /// The filters in words, for a message ("" when none is given):
    /// ` of cascade c, cell x with confidence from 0.5 to 0.75`.
    pub fn describe(&self) -> String {
        let mut what = match (&self.cascade, &self.cell) {
            (Some(cascade), Some(cell)) => format!(" of cascade {cascade}, cell {cell}"),
            (Some(cascade), None) => format!(" of cascade {cascade}"),
            (None, Some(cell)) => format!(" of cell {cell}"),
            (None, None) => String::new(),
        };
        let number = |x: f32| output::confidence(f64::from(x));
        match (self.min_confidence, self.max_confidence) {
            (Some(min), Some(max)) => what.push_str(&format!(
                " with confidence from {} to {}",
                number(min),
                number(max)
            )),
            (Some(min), None) => what.push_str(&format!(" with confidence >= {}", number(min))),
            (None, Some(max)) => what.push_str(&format!(" with confidence <= {}", number(max))),
            (None, None) => {}
        }
        what
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filter_given_is_one_condition_on_its_parameter() {
        assert!(Selection::default().conditions().is_empty());
        assert_eq!(Selection::default().describe(), "");
        let every = Selection {
            cascade: Some("c".into()),
            cell: Some("x".into()),
            min_confidence: Some(0.5),
            max_confidence: Some(0.75),
        };
        assert_eq!(
            every.conditions(),
            [
                "cascade_id = {cascade:String}",
                "cell_name = {cell:String}",
                "confidence >= {min_confidence:Float32}",
                "confidence <= {max_confidence:Float32}",
            ]
        );
        assert_eq!(
            every.describe(),
            " of cascade c, cell x with confidence from 0.5 to 0.75"
        );
        let cell_and_floor = Selection {
            cell: Some("x".into()),
            min_confidence: Some(0.8),
            ..Selection::default()
        };
        assert_eq!(
            cell_and_floor.conditions(),
            [
                "cell_name = {cell:String}",
                "confidence >= {min_confidence:Float32}"
            ]
        );
        assert_eq!(
            cell_and_floor.describe(),
            " of cell x with confidence >= 0.8"
        );
    }
}
