//! Sources → signals → answers, end to end over real OTLP: every row of the
//! mapping table (`mapping`), mesh-llm as its survey exporter sends
//! (`mesh_llm`), data that maps to nothing and series over the budget
//! (`visibility`), and the docs generated from the table and a real run
//! (`docs`).

mod docs;
mod mapping;
mod mesh_llm;
mod visibility;
