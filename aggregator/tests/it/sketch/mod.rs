mod accuracy;
mod histogram;
mod properties;
mod series;
