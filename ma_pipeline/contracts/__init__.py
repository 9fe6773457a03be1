"""The contracts that cross package boundaries: the bottom layer.

Every other package may import it and it imports none of them (setup.cfg's import-linter
contracts keep it so): the warehouse's table catalogue and the asset keys derived from it, the
column schemas of the tables the API and the marts read, the published snapshot's layout, the
API's request store and the answer a company gets.
"""
