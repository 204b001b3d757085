"""Architecture encoders shared by predictors and representation learners."""
