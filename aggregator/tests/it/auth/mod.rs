mod binary;
mod ingest;
mod issuer;
mod issuer_binary;
mod no_secrets;
