mod engines;
mod genai;
mod identity;
mod lifecycle;
mod losses;
mod router_gpu;
