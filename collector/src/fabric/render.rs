//! Human output of fabric traces for `hopwatch-collector trace`: a block per hop like the flowtracker seed, and all paths side by side.
