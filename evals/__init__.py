"""placecell.evals"""
