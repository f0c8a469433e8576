mod binary;
mod dropped_events;
mod replicas;
mod writer;
