//! The offline subcommands: `validate` (schema, CEL and semantic rules), `render` (every object
//! for a cluster), `crd` (the CRDs), and the YAML they read and write.

pub mod crd;
pub mod render;
pub mod validate;
pub mod yaml;
