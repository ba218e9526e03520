"""placecell.graphs"""
