"""placecell.agents"""
