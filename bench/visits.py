"""The table both ingest and publish benchmarks generate: 12 columns of clinic visits, and the schema it follows."""
SEED = 20260501
SITES, GRADES, SEXES = ['north', 'south', 'east', 'west'], ['a', 'b', 'c'], ['F', 'M']

def bench_schema():
    "The declared schema of the generated table: its ranges are the generator's."
    from leptonhub.platform.schema import Schema, Field
    return Schema({
        'id': Field('str', nullable=False), 'age': Field('int', min=18, max=100),
        'sex': Field('category', values=SEXES), 'site': Field('category', values=SITES),
        'grade': Field('category', values=GRADES), 'visits': Field('int', min=0, max=50),
        'smoker': Field('int', values=[0, 1]), 'bp': Field('float', min=60, max=250),
        'chol': Field('float', min=85, max=650), 'bmi': Field('float', min=10, max=60),
        'score': Field('float', min=0, max=1), 'visit_date': Field('datetime')})
