//! Limits on a document's shape, checked before it is validated or run, in
//! time linear in its text.
//!
//! async-graphql guards little of this itself, and what it guards it guards
//! too late: its parser recurses once per nested value (about 1,300 levels
//! overflow a worker's stack and abort the process), and its checks and
//! validation expand every fragment spread in place, so 26 fragments that
//! each spread the next one twice (1 KB of text) take minutes of a core. So
//! before async-graphql sees a document (`documents` is the one door):
//! - [`check_nesting`] reads the raw text and refuses brackets nested deeper
//!   than the limit, before any recursive parser sees it;
//! - [`check_shape`] measures the parsed document with each fragment measured
//!   once: how many fields and directives it has with every spread expanded,
//!   and how deep its fields go.
//!
//! The depth limit leaves out introspection: graphql-js's standard query nests
//! 13 deep through `ofType`, and GraphiQL and every codegen tool send it.
//! Inside `__schema` and `__type` the rule is graphql-js's own
//! (`MaxIntrospectionDepthRule`): `fields`, `inputFields`, `interfaces` and
//! `possibleTypes` may nest at most twice, which is what makes introspection
//! expensive; the field limit bounds the rest.
//!
//! Cost by page size is async-graphql's complexity, weighed per list field
//! (see `pagination::cost`), which this guard keeps linear to compute.

use std::collections::HashMap;

use async_graphql::{
    Name, Positioned, ServerError, ServerResult,
    parser::types::{ExecutableDocument, Selection, SelectionSet, VariableDefinition},
};

use crate::config::Settings;

/// The limits, from settings.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Brackets (`{`, `[`, `(`) open at once anywhere in the text, and
    /// fragments spread within fragments.
    pub nesting: usize,
    /// Fields along one path, introspection left out.
    pub depth: usize,
    /// Fields with every fragment spread expanded (aliases count each time).
    pub fields: usize,
    /// Directives with every fragment spread expanded.
    pub directives: usize,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            nesting: settings.query_nesting_limit,
            depth: settings.query_depth_limit,
            fields: settings.query_fields_limit,
            directives: settings.query_directives_limit,
        }
    }
}

/// The introspection fields whose nesting multiplies the answer.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "inputFields", "interfaces", "possibleTypes"];
/// graphql-js's `MaxIntrospectionDepthRule` refuses a third level.
const MAX_INTROSPECTION_LISTS: u32 = 2;

/// Refuses `text` when its brackets nest deeper than `max`, reading it once
/// and skipping strings, block strings and comments.
pub fn check_nesting(text: &str, max: usize) -> ServerResult<()> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped delimiter does not close the block.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return Err(refused(format!(
                        "the document nests deeper than {max} levels"
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What one selection set (or fragment) holds, with spreads expanded.
#[derive(Clone, Copy, Default)]
struct Measure {
    fields: u64,
    directives: u64,
    /// Deepest path of fields counted against the depth limit.
    depth: u32,
    /// Deepest nesting of [`INTROSPECTION_LISTS`] fields, when inside
    /// introspection.
    lists: u32,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.fields = self.fields.saturating_add(other.fields);
        self.directives = self.directives.saturating_add(other.directives);
        self.depth = self.depth.max(other.depth);
        self.lists = self.lists.max(other.lists);
    }
}

/// A fragment's measure depends on whether it is read inside introspection,
/// so each is measured at most twice.
type FragmentKey<'a> = (&'a Name, bool);

struct Measuring<'a> {
    document: &'a ExecutableDocument,
    limits: Limits,
    fragments: HashMap<FragmentKey<'a>, Option<Measure>>,
}

impl<'a> Measuring<'a> {
    fn selection_set(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        introspection: bool,
        nesting: usize,
    ) -> ServerResult<Measure> {
        if nesting > self.limits.nesting {
            return Err(refused(format!(
                "the document nests deeper than {} levels",
                self.limits.nesting
            )));
        }
        let mut measure = Measure::default();
        for selection in &set.node.items {
            measure.directives = measure
                .directives
                .saturating_add(selection.node.directives().len() as u64);
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let inside = introspection || name == "__schema" || name == "__type";
                    let mut child =
                        self.selection_set(&field.node.selection_set, inside, nesting + 1)?;
                    child.fields = child.fields.saturating_add(1);
                    if inside {
                        child.lists += u32::from(INTROSPECTION_LISTS.contains(&name));
                    } else {
                        child.depth += 1;
                    }
                    measure.add(child);
                }
                Selection::InlineFragment(inline) => {
                    let child =
                        self.selection_set(&inline.node.selection_set, introspection, nesting + 1)?;
                    measure.add(child);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let child = self.fragment(name, introspection, nesting + 1)?;
                    measure.add(child);
                }
            }
        }
        Ok(measure)
    }

    fn fragment(
        &mut self,
        name: &'a Name,
        introspection: bool,
        nesting: usize,
    ) -> ServerResult<Measure> {
        let key = (name, introspection);
        match self.fragments.get(&key) {
            Some(Some(measure)) => return Ok(*measure),
            // Validation names the cycle; measuring it would never end.
            Some(None) => return Err(refused(format!("fragment {name} spreads itself"))),
            None => {}
        }
        // Validation reports an unknown fragment.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Measure::default());
        };
        self.fragments.insert(key, None);
        let mut measure =
            self.selection_set(&fragment.node.selection_set, introspection, nesting)?;
        measure.directives = measure
            .directives
            .saturating_add(fragment.node.directives.len() as u64);
        self.fragments.insert(key, Some(measure));
        Ok(measure)
    }
}

/// Refuses a parsed document over the field, directive or depth limits, or
/// whose introspection nests its lists too deep.
pub fn check_shape(document: &ExecutableDocument, limits: Limits) -> ServerResult<()> {
    let mut measuring = Measuring {
        document,
        limits,
        fragments: HashMap::new(),
    };
    let mut total = Measure::default();
    for (_, operation) in document.operations.iter() {
        let mut measure = measuring.selection_set(&operation.node.selection_set, false, 1)?;
        measure.directives = measure.directives.saturating_add(directives_of_variables(
            &operation.node.variable_definitions,
        ));
        measure.directives = measure
            .directives
            .saturating_add(operation.node.directives.len() as u64);
        total.add(measure);
    }
    if total.fields > limits.fields as u64 {
        return Err(refused(format!(
            "the query selects more than {} fields, counting each fragment as often as it is spread",
            limits.fields
        )));
    }
    if total.directives > limits.directives as u64 {
        return Err(refused(format!(
            "the query has more than {} directives",
            limits.directives
        )));
    }
    if total.depth as usize > limits.depth {
        return Err(refused(format!(
            "the query nests fields deeper than {}",
            limits.depth
        )));
    }
    if total.lists > MAX_INTROSPECTION_LISTS {
        return Err(refused("the introspection query nests too deep".into()));
    }
    Ok(())
}

fn directives_of_variables(variables: &[Positioned<VariableDefinition>]) -> u64 {
    variables
        .iter()
        .map(|variable| variable.node.directives.len() as u64)
        .sum()
}

fn refused(message: String) -> ServerError {
    super::error_codes::coded_error(message, "BAD_USER_INPUT")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        nesting: 64,
        depth: 12,
        fields: 2_000,
        directives: 50,
    };

    fn shape(query: &str) -> ServerResult<()> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        check_shape(&document, LIMITS)
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments_only() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(70), "]".repeat(70));
        assert!(check_nesting(&deep, 64).is_err());
        let quoted = format!(
            "{{ a(x: \"{}\", y: \"\"\"{}\\\"\"\"{}\"\"\") }} # {}",
            "[".repeat(70),
            "{".repeat(70),
            "(".repeat(70),
            "{".repeat(70)
        );
        assert!(check_nesting(&quoted, 64).is_ok(), "{quoted}");
        let escaped_quote = format!("{{ a(x: \"\\\"{}\") }}", "[".repeat(70));
        assert!(check_nesting(&escaped_quote, 64).is_ok());
    }

    #[test]
    fn fragments_count_as_often_as_they_are_spread() {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..26 {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment F26 on Query { __typename }\n");
        let error = shape(&query).expect_err("2^26 fields");
        assert!(error.message.contains("more than 2000 fields"), "{error:?}");

        let mut small = String::from("query { ...F0 }\n");
        for level in 0..9 {
            small.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        small.push_str("fragment F9 on Query { __typename }\n");
        assert!(shape(&small).is_ok(), "2^9 fields are allowed");
    }

    #[test]
    fn depth_leaves_introspection_out_but_bounds_its_lists() {
        let chain = format!(
            "{{ __type(name: \"User\") {{ {}name{} }} }}",
            "ofType { ".repeat(20),
            " }".repeat(20)
        );
        assert!(shape(&chain).is_ok());
        let lists =
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert!(shape(lists).is_err());
        let deep = format!("{{ {}id{} }}", "a { ".repeat(13), " }".repeat(13));
        assert!(shape(&deep).is_err());
        let at_limit = format!("{{ {}id{} }}", "a { ".repeat(11), " }".repeat(11));
        assert!(shape(&at_limit).is_ok());
    }

    #[test]
    fn a_fragment_cycle_is_refused_not_measured_forever() {
        assert!(
            shape("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").is_err()
        );
    }

    #[test]
    fn directives_are_counted_expanded() {
        let fields: String = (0..60)
            .map(|i| format!("f{i}: __typename @skip(if: false) "))
            .collect();
        assert!(shape(&format!("{{ {fields} }}")).is_err());
    }
}
