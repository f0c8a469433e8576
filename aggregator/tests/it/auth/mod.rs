mod binary;
mod ingest;
mod issuer;
mod issuer_binary;
